//! Tests of the wire format: round trips, limits, bad lines (the `tests` module of
//! `protocol.rs`).

use super::*;

#[test]
fn client_messages_round_trip_and_name_their_type() {
    let msgs = [
        client_hello("console"),
        ClientMsg::Escalate,
        ClientMsg::SetPaused { paused: true },
        ClientMsg::UpskillStart {
            candidates: None,
            auto_apply: true,
        },
        ClientMsg::UpskillApply { row: 2 },
        ClientMsg::Eval { skill: None },
    ];
    for m in msgs {
        let line = encode_client(&m);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert_eq!(decode_client(line.trim_end()).unwrap(), m);
    }
    assert_eq!(
        encode_client(&ClientMsg::Escalate),
        "{\"type\":\"escalate\"}\n"
    );
    assert_eq!(
        ClientMsg::SetPaused { paused: false }.engine_command(),
        Some(Command::SetPaused(false))
    );
}

#[test]
fn bad_client_lines_are_errors_not_panics() {
    for bad in [
        "",
        "{",
        "[1,2]",
        "{\"type\":\"format_disk\"}",
        "{\"type\":\"upskill_apply\",\"row\":-1}",
        "{\"type\":\"hello\",\"protocol\":\"one\",\"client\":\"x\"}",
    ] {
        assert!(
            matches!(decode_client(bad), Err(ProtocolError::Malformed(_))),
            "{bad}"
        );
    }
    let long = format!(
        "{{\"type\":\"hello\",\"client\":\"{}\"}}",
        "x".repeat(70_000)
    );
    assert!(matches!(
        decode_client(&long),
        Err(ProtocolError::TooLong { .. })
    ));
    // Control characters from the line never reach the message text raw.
    let e = decode_client("{\"type\":\"\u{1b}[2J\"}").unwrap_err();
    assert!(!e.to_string().contains('\u{1b}'));
}

#[test]
fn a_frame_rides_with_its_event() {
    let jpeg: Arc<[u8]> = vec![0xff, 0xd8, 1, 2, 3].into();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let ev = Event::FrameTaken {
        dhash: None,
        seq: 7,
        captured_at: Utc::now(),
        label: "a.jpg".into(),
        width: 4,
        height: 2,
        jpeg_bytes: 5,
        superseded: 0,
        image: Some(Arc::new(PreparedFrame {
            width: 4,
            height: 2,
            jpeg: jpeg.clone(),
            base64: b64.into(),
        })),
    };
    let line = encode_server(&ServerMsg::Event(ev));
    let back = decode_server(line.trim_end()).unwrap();
    let ServerMsg::Event(Event::FrameTaken {
        seq: 7,
        image: Some(img),
        ..
    }) = back
    else {
        panic!("{back:?}")
    };
    assert_eq!(&*img.jpeg, &*jpeg);
    assert_eq!((img.width, img.height), (4, 2));
    // The event part has the session log's fields.
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"]["type"], "frame_taken");
    assert_eq!(v["event"]["seq"], 7);
}

#[test]
fn history_requests_and_answers_round_trip() {
    for m in [
        ClientMsg::HistoryDetail { incident: 7 },
        ClientMsg::HistoryFrame { id: 31 },
        ClientMsg::Away,
        ClientMsg::Here,
    ] {
        let line = encode_client(&m);
        assert_eq!(decode_client(line.trim_end()).unwrap(), m);
    }
    assert_eq!(encode_client(&ClientMsg::Away), "{\"type\":\"away\"}\n");
    let jpeg: Arc<[u8]> = vec![0xff, 0xd8, 9].into();
    let back = decode_server(
        encode_server(&ServerMsg::HistoryFrame {
            id: 31,
            result: Ok(jpeg.clone()),
        })
        .trim_end(),
    )
    .unwrap();
    let ServerMsg::HistoryFrame {
        id: 31,
        result: Ok(b),
    } = back
    else {
        panic!("{back:?}")
    };
    assert_eq!(&*b, &*jpeg);
    let back = decode_server(
        encode_server(&ServerMsg::HistoryDetail {
            result: Err("gone".into()),
        })
        .trim_end(),
    )
    .unwrap();
    assert!(matches!(back, ServerMsg::HistoryDetail { result: Err(e) } if e == "gone"));
    let summary = crate::history::query::AwaySummary {
        answers: 3,
        ..Default::default()
    };
    let back = decode_server(
        encode_server(&ServerMsg::Away {
            summary: Some(Box::new(summary.clone())),
        })
        .trim_end(),
    )
    .unwrap();
    assert!(matches!(back, ServerMsg::Away { summary: Some(s) } if *s == summary));
    assert!(matches!(
        decode_server(encode_server(&ServerMsg::Here).trim_end()).unwrap(),
        ServerMsg::Here
    ));
}

#[test]
fn the_mismatch_message_names_both_versions() {
    let m = version_mismatch(9);
    assert!(m.contains("version 9") && m.contains(&format!("speaks {PROTOCOL_VERSION}")));
}
