//! Integration tests of `grayscope-patterns` through its public API only.
//! Self-contained: fixtures live under `tests/fixtures`.

mod stability {
    use grayscope_patterns::{Miner, MinerConfig, TemplateId};

    pub(crate) const FIXTURE: &str = include_str!("fixtures/mixed.log");

    pub(crate) fn mine_all(m: &mut Miner, text: &str) -> Vec<TemplateId> {
        text.lines()
            .enumerate()
            .map(|(i, l)| m.mine(l, 1_000 + i as u64).template_id)
            .collect()
    }

    #[test]
    fn two_miners_that_saw_the_same_lines_agree() {
        let mut a = Miner::new(MinerConfig::default());
        let mut b = Miner::new(MinerConfig::default());
        assert_eq!(mine_all(&mut a, FIXTURE), mine_all(&mut b, FIXTURE));
        let ta: Vec<_> = a.templates().collect();
        let tb: Vec<_> = b.templates().collect();
        assert_eq!(ta, tb);
    }

    #[test]
    fn ids_are_the_hash_of_the_template_text() {
        let mut m = Miner::new(MinerConfig::default());
        for l in FIXTURE.lines() {
            let got = m.mine(l, 0);
            assert_eq!(got.template_id, TemplateId::of(&got.template));
        }
        for t in m.templates() {
            assert_eq!(t.id, TemplateId::of(&t.template));
        }
    }

    #[test]
    fn a_restart_keeps_ids_and_continues_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miner.json");
        let lines: Vec<&str> = FIXTURE.lines().collect();
        let (first, second) = lines.split_at(lines.len() / 2);

        let mut straight = Miner::new(MinerConfig::default());
        let mut restarted = Miner::new(MinerConfig::default());
        for (i, l) in first.iter().enumerate() {
            assert_eq!(straight.mine(l, i as u64), restarted.mine(l, i as u64));
        }
        restarted.save(&path).unwrap();
        let mut restarted = Miner::load(&path, MinerConfig::default()).unwrap();
        let (mut sa, mut sb) = (straight.stats(), restarted.stats());
        sa.cache_hits = 0;
        sb.cache_hits = 0;
        assert_eq!(sa, sb);
        // Lines seen before the restart keep their ids...
        for (i, l) in first.iter().chain(second.iter()).enumerate() {
            assert_eq!(
                straight.mine(l, i as u64),
                restarted.mine(l, i as u64),
                "line {l:?}"
            );
        }
        // ...and the two miners end in the same state.
        let a: Vec<_> = straight.templates().collect();
        let b: Vec<_> = restarted.templates().collect();
        assert_eq!(a.len(), b.len());
        for t in &a {
            assert!(b.contains(t), "missing after restart: {t:?}");
        }
    }

    #[test]
    fn load_rejects_tampered_and_missing_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miner.json");
        assert!(Miner::load(&path, MinerConfig::default()).is_err());
        let fresh = Miner::load_or_new(&path, MinerConfig::default()).unwrap();
        assert_eq!(fresh.stats().templates, 0);
        let mut m = Miner::new(MinerConfig::default());
        mine_all(&mut m, FIXTURE);
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("Deleting block", "Creating block", 1);
        std::fs::write(&path, tampered).unwrap();
        let err = Miner::load(&path, MinerConfig::default()).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
        std::fs::write(&path, "{not json").unwrap();
        assert!(Miner::load(&path, MinerConfig::default()).is_err());
        assert!(Miner::load_or_new(&path, MinerConfig::default()).is_err());
    }
}

mod lineage {
    use grayscope_patterns::{Miner, MinerConfig};

    #[test]
    fn a_generalised_template_stays_resolvable() {
        let mut m = Miner::new(MinerConfig::default());
        let first = m.mine("Invalid user webmaster from 173.234.31.186", 1);
        assert_eq!(&*first.template, "Invalid user webmaster from <*>");
        for (t, user) in ["admin", "oracle", "test", "guest"].iter().enumerate() {
            m.mine(
                &format!("Invalid user {user} from 10.0.0.{t}"),
                2 + t as u64,
            );
        }
        let now = m.mine("Invalid user nagios from 10.9.9.9", 10);
        assert_eq!(&*now.template, "Invalid user <*> from <*>");
        assert_eq!(m.resolve(&first.template_id), Some(now.template_id));
        assert_eq!(m.resolve(&now.template_id), Some(now.template_id));
        let old = m.templates().find(|t| t.id == first.template_id).unwrap();
        assert_eq!(old.parent_id, Some(now.template_id));
        let new = m.templates().find(|t| t.id == now.template_id).unwrap();
        assert_eq!(new.parent_id, None);
        assert_eq!(
            new.count, 6,
            "counts of the generalised templates carry over"
        );
        assert_eq!(new.first_seen, 1);
        assert!(m.stats().merges >= 1);
    }

    #[test]
    fn few_distinct_words_stay_apart() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.mine("session opened for user alice", 1);
        let b = m.mine("session closed for user alice", 2);
        let c = m.mine("session opened for user alice", 3);
        assert_ne!(a.template_id, b.template_id);
        assert_eq!(a.template_id, c.template_id);
    }

    #[test]
    fn unknown_ids_do_not_resolve() {
        let m = Miner::new(MinerConfig::default());
        assert_eq!(m.resolve(&grayscope_patterns::TemplateId::of("nope")), None);
    }
}

mod memory {
    use grayscope_patterns::{Miner, MinerConfig};

    #[test]
    fn template_cap_evicts_least_recently_used() {
        let mut m = Miner::new(MinerConfig {
            max_templates: 3,
            ..MinerConfig::default()
        });
        let keep = m.mine("alpha event happened", 1);
        m.mine("bravo thing started now", 2);
        m.mine("alpha event happened", 3); // alpha is now more recent than bravo
        m.mine("charlie job finished ok here", 4);
        m.mine("delta queue drained fully at last", 5); // evicts bravo
        let s = m.stats();
        assert_eq!(s.templates, 3);
        assert_eq!(s.evictions, 1);
        let live: Vec<String> = m.templates().map(|t| t.template.to_string()).collect();
        assert!(
            live.contains(&"alpha event happened".to_string()),
            "{live:?}"
        );
        assert!(!live.iter().any(|t| t.starts_with("bravo")), "{live:?}");
        assert_eq!(m.resolve(&keep.template_id), Some(keep.template_id));
        // An evicted template comes back with the same id.
        let again = m.mine("bravo thing started now", 6);
        assert_eq!(
            again.template_id,
            grayscope_patterns::TemplateId::of("bravo thing started now")
        );
        assert_eq!(m.stats().evictions, 2);
    }

    #[test]
    fn many_distinct_lines_stay_bounded() {
        let mut m = Miner::new(MinerConfig {
            max_templates: 50,
            max_lineage: 20,
            cache_capacity: 64,
            ..MinerConfig::default()
        });
        let words = [
            "red", "green", "blue", "cyan", "magenta", "yellow", "black", "white",
        ];
        for i in 0..5_000u64 {
            let a = words[(i % 8) as usize];
            let b = words[((i / 8) % 8) as usize];
            let c = words[((i / 64) % 8) as usize];
            m.mine(&format!("{a} {b} {c} event {i}"), i);
        }
        let s = m.stats();
        assert!(s.templates <= 50, "{s:?}");
        assert!(s.lineage <= 20, "{s:?}");
        assert!(s.shapes <= 50 * 2, "{s:?}");
        assert_eq!(s.lines, 5_000);
    }

    /// Every line a new template (random words): the worst case for the slow
    /// path. Run with `--ignored` to see the rate; bounded by
    /// `max_merge_candidates`.
    #[test]
    #[ignore]
    fn never_repeating_lines_rate() {
        let mut m = Miner::new(MinerConfig::default());
        let mut x: u64 = 7;
        let start = std::time::Instant::now();
        let n = 100_000;
        for i in 0..n {
            let mut line = String::new();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let w = x % 26_000;
                line.push_str(&format!("w{}{} ", (b'a' + (w % 26) as u8) as char, w / 26));
            }
            m.mine(&line, i);
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{:.0} lines/s, {:?}", n as f64 / secs, m.stats());
        assert!(m.stats().templates <= MinerConfig::default().max_templates);
    }

    #[test]
    fn a_lower_cap_on_load_evicts_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut m = Miner::new(MinerConfig::default());
        crate::stability::mine_all(&mut m, crate::stability::FIXTURE);
        let before = m.stats();
        m.save(&path).unwrap();
        let small = Miner::load(
            &path,
            MinerConfig {
                max_templates: 2,
                ..MinerConfig::default()
            },
        )
        .unwrap();
        let s = small.stats();
        assert_eq!(s.templates, 2);
        assert_eq!(
            s.evictions,
            before.evictions + (before.templates as u64 - 2)
        );
    }
}

mod bad_input {
    use grayscope_patterns::{Miner, MinerConfig};

    #[test]
    fn empty_and_blank_lines_share_the_empty_template() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.mine("", 1);
        let b = m.mine(" \t  ", 2);
        assert_eq!(&*a.template, "");
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(m.stats().empty_lines, 2);
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_counted() {
        let mut m = Miner::new(MinerConfig::default());
        let got = m.mine_bytes(b"user \xff\xfe logged in from 10.0.0.1", 1);
        assert!(got.template.contains('\u{fffd}'), "{}", got.template);
        assert!(got.template.ends_with("logged in from <*>"));
        assert_eq!(m.stats().invalid_utf8_lines, 1);
        let ok = m.mine_bytes("plain ünïcödé line".as_bytes(), 2);
        assert_eq!(&*ok.template, "plain ünïcödé line");
        assert_eq!(m.stats().invalid_utf8_lines, 1);
    }

    #[test]
    fn one_megabyte_lines_are_truncated_and_counted() {
        let cfg = MinerConfig::default();
        let mut m = Miner::new(cfg.clone());
        let words = "lorem ipsum dolor sit amet ".repeat((1 << 20) / 27 + 1);
        let no_spaces = "a:".repeat(1 << 19);
        let one_token = "x".repeat(1 << 20);
        let multibyte = "é".repeat(1 << 19);
        let start = std::time::Instant::now();
        for (i, line) in [&words, &no_spaces, &one_token, &multibyte]
            .iter()
            .enumerate()
        {
            assert!(line.len() >= 1 << 20);
            let got = m.mine(line, i as u64);
            assert!(
                got.template.len() < 64 * 1024,
                "template of {} bytes",
                got.template.len()
            );
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(m.stats().truncated_lines, 4);
        let t = m.mine(&words, 9);
        assert!(
            t.template.ends_with("<*>"),
            "{}",
            &t.template[t.template.len() - 20..]
        );
        assert_eq!(t.template.split(' ').count(), cfg.max_tokens + 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut m = Miner::new(MinerConfig {
            max_templates: 16,
            ..MinerConfig::default()
        });
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..3_000u64 {
            let len = (x % 200) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Bias towards delimiters, digits and structure characters.
                let pool = b"{}[]\":,=/ .:@0123456789abcdefXYZ\\'\t#|-_\xff\xc3";
                buf.push(pool[(x % pool.len() as u64) as usize]);
            }
            m.mine_bytes(&buf, i);
        }
        assert_eq!(m.stats().lines, 3_000);
        assert!(m.stats().templates <= 16);
    }
}

mod structured {
    use grayscope_patterns::{Miner, MinerConfig};

    #[test]
    fn json_bodies_mine_on_keys_and_value_shapes() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.mine(
            r#"{"level":"info","msg":"payment accepted","order":"a1b2-3","cents":1299}"#,
            1,
        );
        let b = m.mine(
            r#"{"level": "info", "msg": "payment accepted", "order": "ff09-1", "cents": 7}"#,
            2,
        );
        let c = m.mine(
            r#"{"level":"error","msg":"payment declined","order":"a1b2-3","cents":1299}"#,
            3,
        );
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(
            &*a.template,
            r#"{"level":"info","msg":"payment accepted","order":"<*>","cents":<*>}"#
        );
        assert_ne!(a.template_id, c.template_id);
        assert_eq!(m.stats().json_lines, 3);
    }

    #[test]
    fn logfmt_bodies_mine_on_keys_and_value_shapes() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.mine(
            r#"level=warn msg="slow query" table=orders took=812ms rows=1200"#,
            1,
        );
        let b = m.mine(
            r#"level=warn msg="slow query" table=orders took=9ms rows=3"#,
            2,
        );
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(
            &*a.template,
            r#"level=warn msg="slow query" table=orders took=<*> rows=<*>"#
        );
        assert_eq!(m.stats().logfmt_lines, 2);
    }
}

mod properties {
    use grayscope_patterns::{Miner, MinerConfig};
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "open",
            "close",
            "user",
            "alice",
            "bob",
            "carol",
            "dave",
            "from",
            "port",
            "failed",
            "ok",
            "=",
            ":",
            "[x]",
            "10.0.0.1",
            "42",
            "0x1f",
            "/var/log/a",
            "\"q\"",
            "com.a.x",
            "com.a.y",
            "com.a.z.w",
            "org.b",
        ]);
        prop::collection::vec(word, 0..8).prop_map(|w| w.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A miner restored from its saved state and one that never stopped
        /// must agree on every later line.
        #[test]
        fn saved_and_continuous_miners_agree(
            before in prop::collection::vec(line(), 0..60),
            after in prop::collection::vec(line(), 0..60),
            cap in 2usize..20,
        ) {
            let cfg = MinerConfig { max_templates: cap, max_lineage: cap, ..MinerConfig::default() };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.json");
            let mut a = Miner::new(cfg.clone());
            for (i, l) in before.iter().enumerate() {
                a.mine(l, i as u64);
            }
            a.save(&path).unwrap();
            let mut b = Miner::load(&path, cfg).unwrap();
            for (i, l) in after.iter().enumerate() {
                prop_assert_eq!(a.mine(l, i as u64), b.mine(l, i as u64));
            }
            // The cache of masked lines is not persisted: its hit counter is
            // the one figure allowed to differ.
            let (mut sa, mut sb) = (a.stats(), b.stats());
            sa.cache_hits = 0;
            sb.cache_hits = 0;
            prop_assert_eq!(sa, sb);
        }

        /// Any text, however odd, mines without panicking and yields the
        /// hash of a template that renders no longer than the limits allow.
        #[test]
        fn arbitrary_text_never_panics(
            lines in prop::collection::vec(
                prop_oneof![
                    any::<String>(),
                    "[ -~]{0,80}",
                    "\\{[\"a-z:,0-9 \\[\\]{}]{0,60}\\}",
                    "([a-z]{1,5}=(\"[^\"]{0,10}\"|[a-z0-9.:/]{0,8}) ){0,6}",
                    "[0-9a-fA-F:.\\-/@ ]{0,40}",
                ],
                1..40,
            )
        ) {
            let mut m = Miner::new(MinerConfig { max_templates: 8, ..MinerConfig::default() });
            for (i, l) in lines.iter().enumerate() {
                let got = m.mine(l, i as u64);
                prop_assert_eq!(got.template_id, grayscope_patterns::TemplateId::of(&got.template));
                let got = m.mine_bytes(l.as_bytes(), i as u64);
                prop_assert!(got.template.len() <= l.len() * 3 + 8);
            }
            prop_assert!(m.stats().templates <= 8);
        }

        /// Every id handed out resolves (or was evicted) and every template's
        /// id is its text's hash.
        #[test]
        fn ids_match_text(lines in prop::collection::vec(line(), 0..80)) {
            let mut m = Miner::new(MinerConfig::default());
            for (i, l) in lines.iter().enumerate() {
                let got = m.mine(l, i as u64);
                prop_assert_eq!(got.template_id, grayscope_patterns::TemplateId::of(&got.template));
                prop_assert_eq!(m.resolve(&got.template_id), Some(got.template_id));
            }
        }
    }
}
