//! Dockerfiles (`wharf_build`): arbitrary bytes through parse → plan → expand of every
//! instruction. Must never panic, and what parses must hold its promises: instructions in
//! file order with `start_line <= end_line`, a plan whose order ends with its target and
//! lists each stage once, after the stages it needs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_build::expand::expand;
use wharf_build::stages::{plan, Base, BuildOptions, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(df) = wharf_build::parse(data) else {
        return;
    };
    let mut last = 0;
    for ins in &df.instructions {
        assert!(ins.start_line <= ins.end_line && ins.start_line > last);
        last = ins.end_line;
    }
    let env: Vec<String> = vec!["A=1".into(), "B=two words".into()];
    for ins in &df.instructions {
        let _ = expand(ins, df.directives.escape, &env);
    }
    let p = wharf_types::oci::Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    };
    let opts = BuildOptions {
        target: None,
        build_args: [("A".to_string(), "x".to_string())].into(),
        target_platform: p.clone(),
        build_platform: p,
    };
    let Ok(plan) = plan(&df, &opts) else {
        return;
    };
    assert_eq!(plan.order.last(), Some(&plan.target));
    let mut seen = vec![false; plan.stages.len()];
    for &s in &plan.order {
        assert!(!seen[s], "stage {s} twice");
        let stage = &plan.stages[s];
        let base = match stage.base {
            Base::Stage(i) => Some(i),
            _ => None,
        };
        let needs = stage.sources.iter().filter_map(|x| match x {
            Source::Stage(i) => Some(*i),
            Source::Image(_) => None,
        });
        for d in base.into_iter().chain(needs) {
            assert!(seen[d], "stage {s} before its dependency {d}");
        }
        seen[s] = true;
    }
    let _ = serde_json::to_string(&df);
});
