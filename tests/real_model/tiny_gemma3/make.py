"""Make the tiny random-weight Gemma 3 vision model of the real-model test tier.

    python make.py OUT_DIR [--seed N]

Writes OUT_DIR/model.gguf (the language model, architecture `gemma3`) and
OUT_DIR/mmproj.gguf (its SigLIP encoder and projector, `clip.projector_type = gemma3`)
with the PyPI `gguf` package (pinned in README.md). Same seed, same bytes.

The weights are random: the model writes nonsense. What is real is everything around the
weights: llama.cpp's multimodal path (`mtmd`) loads the pair, decodes and resizes the
image, runs the encoder, pools the patches into 256 image tokens (as the real Gemma 3 does)
and decodes them with the chat template below. Tensor names and metadata keys follow
llama.cpp's `gguf-py/gguf/constants.py`, `tools/mtmd/clip-impl.h` (the `gemma3`
projector) and what `convert_hf_to_gguf.py` writes for Gemma 3 and its mmproj.
"""
import argparse
import pathlib

import numpy as np
import gguf

# The language model: 2 layers of Gemma 3, 64 wide.
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 1
HEAD_DIM = 16
N_FF = 128
N_CTX = 8192

# The vision encoder: SigLIP, 224 px in 14 px patches (16 x 16), pooled 1 x 1: 256 image
# tokens per image, the count of the real Gemma 3 (896 px, 64 x 64 patches pooled 4 x 4).
# Small on purpose: the encoder's cost on 2 CI cores stays in milliseconds.
IMAGE_SIZE = 224
PATCH = 14
MERGE = 1
V_EMBD = 64
V_LAYER = 2
V_HEAD = 4
V_FF = 128
IMAGE_TOKENS = (IMAGE_SIZE // PATCH // MERGE) ** 2

SPECIAL = [
    # (text, type): the ids Gemma 3's chat template and llama.cpp's image markers need.
    ("<pad>", gguf.TokenType.CONTROL),
    ("<eos>", gguf.TokenType.CONTROL),
    ("<bos>", gguf.TokenType.CONTROL),
    ("<unk>", gguf.TokenType.UNKNOWN),
    ("<start_of_turn>", gguf.TokenType.CONTROL),
    ("<end_of_turn>", gguf.TokenType.CONTROL),
    ("<start_of_image>", gguf.TokenType.CONTROL),
    ("<end_of_image>", gguf.TokenType.CONTROL),
]

# A few whole words so the nonsense reads as words now and then (SentencePiece marks a
# leading space with U+2581).
WORDS = (
    "the a an is are of in on to and no yes person people car dog cat door window "
    "light smoke fire safe unsafe near far left right frame camera image see scene "
    "CONFIDENCE agrees missed wrong summary"
).split()

# Gemma 3's chat shape: turns between <start_of_turn>ROLE and <end_of_turn>, the system
# text folded into the first user turn, `model` for the assistant. llama.cpp puts the
# image marker into the text parts itself, so only text parts are rendered here.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(prefix='') -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set text = m['content'] -%}"
    "{%- else -%}{%- set text = namespace(s='') -%}"
    "{%- for p in m['content'] -%}{%- if p['type'] == 'text' -%}"
    "{%- set text.s = text.s + p['text'] -%}{%- endif -%}{%- endfor -%}"
    "{%- set text = text.s -%}{%- endif -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.prefix = ns.prefix + text + '\n\n' -%}"
    "{%- else -%}"
    "{%- set role = 'model' if m['role'] == 'assistant' else m['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + ns.prefix + (text | trim) + '<end_of_turn>\n' }}"
    "{%- set ns.prefix = '' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def vocab():
    tokens, types, scores = [], [], []

    def add(text, ty, score):
        tokens.append(text)
        types.append(int(ty))
        scores.append(float(score))

    for text, ty in SPECIAL:
        add(text, ty, 0.0)
    for b in range(256):  # byte fallback: any text tokenizes
        add(f"<0x{b:02X}>", gguf.TokenType.BYTE, 0.0)
    add("\u2581", gguf.TokenType.NORMAL, -1.0)
    for c in range(0x21, 0x7F):
        add(chr(c), gguf.TokenType.NORMAL, -2.0)
    add("\n", gguf.TokenType.NORMAL, -2.0)
    for w in WORDS:
        add("\u2581" + w, gguf.TokenType.NORMAL, -1.0 + len(w) / 100)
    return tokens, types, scores


def ids(tokens):
    return {t: i for i, t in enumerate(tokens)}


def language_model(path, rng):
    tokens, types, scores = vocab()
    tid = ids(tokens)
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_name("tiny-gemma3-random")
    w.add_description("random weights for tests; writes nonsense")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1_000_000.0)
    w.add_sliding_window(N_CTX)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(tid["<bos>"])
    w.add_eos_token_id(tid["<eos>"])
    w.add_unk_token_id(tid["<unk>"])
    w.add_pad_token_id(tid["<pad>"])
    w.add_eot_token_id(tid["<end_of_turn>"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def t(name, *shape, norm=False):
        # numpy shape is (rows, cols) = ggml (ne1, ne0); norms near 0 (Gemma adds 1).
        a = rng.standard_normal(shape).astype(np.float32) * (0.1 if norm else 0.02)
        w.add_tensor(name, a)

    t("token_embd.weight", len(tokens), N_EMBD)
    t("output_norm.weight", N_EMBD, norm=True)
    for i in range(N_LAYER):
        b = f"blk.{i}"
        t(f"{b}.attn_norm.weight", N_EMBD, norm=True)
        t(f"{b}.attn_q.weight", N_HEAD * HEAD_DIM, N_EMBD)
        t(f"{b}.attn_k.weight", N_HEAD_KV * HEAD_DIM, N_EMBD)
        t(f"{b}.attn_v.weight", N_HEAD_KV * HEAD_DIM, N_EMBD)
        t(f"{b}.attn_q_norm.weight", HEAD_DIM, norm=True)
        t(f"{b}.attn_k_norm.weight", HEAD_DIM, norm=True)
        t(f"{b}.attn_output.weight", N_EMBD, N_HEAD * HEAD_DIM)
        t(f"{b}.post_attention_norm.weight", N_EMBD, norm=True)
        t(f"{b}.ffn_norm.weight", N_EMBD, norm=True)
        t(f"{b}.ffn_gate.weight", N_FF, N_EMBD)
        t(f"{b}.ffn_up.weight", N_FF, N_EMBD)
        t(f"{b}.ffn_down.weight", N_EMBD, N_FF)
        t(f"{b}.post_ffw_norm.weight", N_EMBD, norm=True)
    write(w)


def projector(path, rng):
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("tiny-gemma3-random mmproj")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_clip_has_vision_encoder(True)
    w.add_clip_projector_type("gemma3")
    w.add_vision_projection_dim(N_EMBD)
    w.add_vision_image_size(IMAGE_SIZE)
    w.add_vision_patch_size(PATCH)
    w.add_vision_embedding_length(V_EMBD)
    w.add_vision_feed_forward_length(V_FF)
    w.add_vision_block_count(V_LAYER)
    w.add_vision_head_count(V_HEAD)
    w.add_vision_attention_layernorm_eps(1e-6)
    w.add_vision_image_mean([0.5, 0.5, 0.5])
    w.add_vision_image_std([0.5, 0.5, 0.5])
    w.add_vision_use_gelu(True)
    w.add_vision_projector_scale_factor(MERGE)

    def t(name, *shape, scale=0.02):
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float32) * scale)

    def ones(name, n):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    def zeros(name, n):
        w.add_tensor(name, np.zeros(n, dtype=np.float32))

    t("v.patch_embd.weight", V_EMBD, 3, PATCH, PATCH)
    zeros("v.patch_embd.bias", V_EMBD)
    t("v.position_embd.weight", (IMAGE_SIZE // PATCH) ** 2, V_EMBD)
    for i in range(V_LAYER):
        b = f"v.blk.{i}"
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t(f"{b}.{n}.weight", V_EMBD, V_EMBD)
            zeros(f"{b}.{n}.bias", V_EMBD)
        for n in ("ln1", "ln2"):
            ones(f"{b}.{n}.weight", V_EMBD)
            zeros(f"{b}.{n}.bias", V_EMBD)
        t(f"{b}.ffn_up.weight", V_FF, V_EMBD)
        zeros(f"{b}.ffn_up.bias", V_FF)
        t(f"{b}.ffn_down.weight", V_EMBD, V_FF)
        zeros(f"{b}.ffn_down.bias", V_EMBD)
    ones("v.post_ln.weight", V_EMBD)
    zeros("v.post_ln.bias", V_EMBD)
    t("mm.soft_emb_norm.weight", V_EMBD, scale=0.1)
    # (vision width, text width): clip.cpp multiplies by its transpose.
    t("mm.input_projection.weight", V_EMBD, N_EMBD)
    write(w)


def write(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=25)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    language_model(args.out / "model.gguf", rng)
    projector(args.out / "mmproj.gguf", rng)
    print(f"wrote {args.out}/model.gguf and mmproj.gguf ({IMAGE_TOKENS} tokens per image)")


if __name__ == "__main__":
    main()
