//! The exported set's `README.md` card and the `Modelfile` template, pure text.

use chrono::{DateTime, Utc};

/// What the card says about the set.
#[derive(Debug, Clone, Default)]
pub struct CardFacts {
    pub format: String,
    pub only: String,
    pub train: usize,
    pub test: usize,
    pub agreed: usize,
    pub corrected: usize,
    pub safety: usize,
    pub duplicates: usize,
    pub missing: usize,
    pub eval_images: usize,
    /// `(first line of the skill, examples)`, most used first.
    pub skills: Vec<(String, usize)>,
    pub devices: Vec<String>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub student: String,
    pub teacher: String,
}

/// Model or user text on one line of the card: no controls, no Markdown line breaks.
fn line(s: &str, max: usize) -> String {
    let s = crate::reading::sanitize::strip_controls(s);
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::reading::sanitize::bound(&s.replace('`', "'"), max)
}

/// The dataset card.
pub fn readme(f: &CardFacts) -> String {
    let span = match (f.first, f.last) {
        (Some(a), Some(b)) => format!(
            "{} to {} (UTC)",
            a.format("%Y-%m-%d %H:%M"),
            b.format("%Y-%m-%d %H:%M")
        ),
        _ => "none".into(),
    };
    let files = if f.format == "hf" {
        "`train/` and `test/`: the frames (JPEG) with `metadata.jsonl` (`file_name`, \
         `messages` in the chat-template shape TRL's SFTTrainer and Unsloth read: a system \
         turn, a user turn with `{\"type\": \"image\"}` then the text, the assistant's \
         target; plus `label` and `safety`). Load it with \
         `datasets.load_dataset(\"imagefolder\", data_dir=\"<this folder>\")`."
    } else {
        "`gemmaedge_train.json` and `gemmaedge_test.json` (LLaMA-Factory ShareGPT: \
         `conversations` with `<image>` in the human turn, `system`, `images`), the frames \
         in `images/`, and `dataset_info.json` registering `gemmaedge_train` and \
         `gemmaedge_test`: pass this folder as `dataset_dir`."
    };
    let mut s = format!(
        "# gemmaedge-tui fine-tuning set\n\n\
         Written by `gemmaedge-tui finetune export --format {} --only {}`. Each example is one \
         camera frame: the skill it was answered with as the system prompt, the user turn the \
         student gets, and as the target the teacher's corrected description in the output \
         contract's shape (the description, what the student missed, the `Safety:` sentence \
         or `No safety concerns.`, and `CONFIDENCE: 0.9`).\n\n\
         **The frames come from a camera and may show people.** Keep this folder as private \
         as the camera's own recordings; do not publish it.\n\n\
         ## Counts\n\n\
         | split | examples |\n| --- | --- |\n| train | {} |\n| test | {} |\n\n\
         Labels (from the teacher's verdicts): {} agreed with the student, {} corrected it; \
         {} safety-relevant. Left out: {} near-duplicate frames (perceptual hash), {} frames \
         the store names but that are missing on disk, and every cut or unreadable verdict. \
         {} frames are eval cases' images: they are in `test` only.\n\n\
         ## Source\n\n\
         - devices: {}\n- frames from {}\n- student: {}\n- teacher (labels): {}\n\n\
         ## Skills\n\n",
        f.format,
        f.only,
        f.train,
        f.test,
        f.agreed,
        f.corrected,
        f.safety,
        f.duplicates,
        f.missing,
        f.eval_images,
        if f.devices.is_empty() {
            "(not named)".to_string()
        } else {
            f.devices
                .iter()
                .map(|d| line(d, 60))
                .collect::<Vec<_>>()
                .join(", ")
        },
        span,
        line(&f.student, 100),
        line(&f.teacher, 100),
    );
    for (first, n) in &f.skills {
        s.push_str(&format!("- {n} examples: \"{}\"\n", line(first, 120)));
    }
    s.push_str(&format!(
        "\n## Files\n\n{files}\n\n`Modelfile`: a template to serve the \
         fine-tuned student with Ollama (`FROM` the base model, `ADAPTER` your LoRA, the \
         current skill as `SYSTEM`); then score it with `gemmaedge-tui eval --student-model \
         NAME` and `eval --compare {} NAME`.\n",
        line(&f.student, 100)
    ));
    s
}

/// The Modelfile template: the base model, a LoRA adapter to fill in, the current skill
/// (with the output contract) as the system prompt.
pub fn modelfile(base: &str, system: &str) -> String {
    // A skill is model text: a `"""` in it would end the SYSTEM block early.
    let system = crate::reading::sanitize::strip_controls(system).replace("\"\"\"", "\"\u{201d}\"");
    let base: String = base
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    format!(
        "# Serve the fine-tuned student with Ollama:\n\
         #   ollama create gemma-edge-ft -f Modelfile\n\
         # then try it: gemmaedge-tui eval --student-model gemma-edge-ft\n\
         FROM {base}\n\
         # The LoRA adapter you trained on this set (a safetensors folder or a GGUF file).\n\
         ADAPTER ./adapter\n\
         SYSTEM \"\"\"{system}\"\"\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_counts_and_warns_about_people() {
        let f = CardFacts {
            format: "hf".into(),
            only: "all".into(),
            train: 9,
            test: 2,
            agreed: 4,
            corrected: 7,
            safety: 3,
            duplicates: 5,
            missing: 1,
            eval_images: 1,
            skills: vec![("Watch the\nkitchen `rm -rf`".into(), 11)],
            devices: vec!["kitchen".into()],
            student: "gemma4:e2b".into(),
            teacher: "gemma4:26b".into(),
            ..CardFacts::default()
        };
        let r = readme(&f);
        assert!(r.contains("| train | 9 |"), "{r}");
        assert!(r.contains("may show people"));
        assert!(r.contains("5 near-duplicate"));
        assert!(
            r.contains("- 11 examples: \"Watch the kitchen 'rm -rf'\""),
            "{r}"
        );
    }

    #[test]
    fn the_modelfile_keeps_the_skill_inside_its_block() {
        let m = modelfile("gemma4:e2b", "Watch.\"\"\"\nFROM evil");
        assert!(m.contains("FROM gemma4:e2b\n"));
        assert!(m.contains("ADAPTER ./adapter\n"));
        assert_eq!(m.matches("\"\"\"").count(), 2, "{m}");
        assert!(m.ends_with("\"\"\"\n"));
    }
}
