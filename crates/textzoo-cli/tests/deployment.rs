//! Deployment end to end through the real binary: the generated C project, built natively,
//! for the QEMU stand-ins of the MCU boards and for the Linux boards under user-mode QEMU,
//! prints exactly what `textzoo operation_mode=prediction` writes to generated.txt; the real
//! board builds link and fit; a model too large for the board is refused with the numbers.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Trains a tiny float model of `name` for a few steps.
fn trained(dir: &Path, name: &str) -> PathBuf {
    let run = dir.join(format!("{name}_trained"));
    let model = format!("model.name={name}");
    let ran = textzoo(&with(
        &tiny(&run),
        &["operation_mode=training", &model, "training.max_steps=30"],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    run.join("saved_models/model.safetensors")
}

/// `chain_qd` on `float`: quantizes and writes the C project for `board`.
fn deploy(dir: &Path, float: &Path, board: &str, prediction: &[&str]) -> (PathBuf, PathBuf) {
    let run = dir.join(format!("deploy_{}", dir.read_dir().unwrap().count()));
    let model = format!("general.model_path={}", float.display());
    let board = format!("deployment.hardware_setup.board={board}");
    let base = tiny(&run);
    let mut args = with(&base, &["operation_mode=chain_qd", &model, &board]);
    args.extend_from_slice(prediction);
    let ran = textzoo(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let int8 = run.join("quantized_models/model_int8.safetensors");
    (int8, run.join("c_project"))
}

/// What `operation_mode=prediction` writes to generated.txt for the int8 model.
fn predicted(dir: &Path, int8: &Path, prediction: &[&str]) -> String {
    let run = dir.join(format!("predict_{}", dir.read_dir().unwrap().count()));
    let model = format!("general.model_path={}", int8.display());
    let run_dir = format!("hydra.run.dir={}", run.display());
    let mut args = vec!["operation_mode=prediction", &model, &run_dir];
    args.extend_from_slice(prediction);
    let ran = textzoo(&args);
    assert_eq!(ran.code, 0, "{}", ran.all());
    std::fs::read_to_string(run.join("generated.txt")).unwrap()
}

/// `make -s <target>` in the project; stdout.
fn make(project: &Path, args: &[&str]) -> String {
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(project)
        .args(args)
        .output()
        .expect("GNU make (installed by .ci/run)");
    assert!(
        out.status.success(),
        "make {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SAMPLE: [&str; 5] = [
    "prediction.prompt=alice was beginning",
    "prediction.max_tokens=24",
    "prediction.strategy=sample",
    "prediction.temperature=0.9",
    "prediction.seed=11",
];

#[test]
fn host_builds_print_what_prediction_writes_for_every_model_kind() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["tiny_gpt", "tiny_bert_generator", "gru", "lstm"] {
        let float = trained(tmp.path(), name);
        let (int8, project) = deploy(tmp.path(), &float, "host", &SAMPLE);
        // The defaults baked into app_config.h: sampling with the seed.
        let want = predicted(tmp.path(), &int8, &SAMPLE);
        assert_eq!(make(&project, &["run-host"]), format!("{want}\n"), "{name}");
        // Other prompts and settings through the host build's arguments.
        for (prompt, extra) in [
            ("the queen", vec!["prediction.strategy=greedy"]),
            ("she said", vec!["prediction.top_k=5", "prediction.seed=3"]),
            ("", vec!["prediction.top_p=0.8"]),
        ] {
            if prompt.is_empty() && name == "tiny_bert_generator" {
                continue; // needs a context (refused by prediction as well)
            }
            let p = format!("prediction.prompt={prompt}");
            // The app's defaults come from SAMPLE (temperature 0.9); the rest is overridden.
            let mut settings = vec![
                p.as_str(),
                "prediction.max_tokens=20",
                "prediction.temperature=0.9",
            ];
            settings.extend(extra.iter().copied());
            if !extra.iter().any(|e| e.starts_with("prediction.seed=")) {
                settings.push("prediction.seed=11");
            }
            if !extra.contains(&"prediction.strategy=greedy") {
                settings.push("prediction.strategy=sample");
            }
            let want = predicted(tmp.path(), &int8, &settings);
            let mut args = vec![format!("--prompt={prompt}")];
            args.push("--max-tokens=20".into());
            args.push(
                if extra.contains(&"prediction.strategy=greedy") {
                    "--greedy"
                } else {
                    "--sample"
                }
                .into(),
            );
            for e in &extra {
                if let Some(k) = e.strip_prefix("prediction.top_k=") {
                    args.push(format!("--top-k={k}"));
                }
                if let Some(p) = e.strip_prefix("prediction.top_p=") {
                    args.push(format!("--top-p={p}"));
                }
            }
            let seed = extra
                .iter()
                .find_map(|e| e.strip_prefix("prediction.seed="))
                .unwrap_or("11");
            args.push(format!("--seed={seed}"));
            let got = run_host(&project, &args);
            assert_eq!(got, format!("{want}\n"), "{name} {args:?}");
        }
    }
}

/// Runs the host build with arguments (values with spaces are passed intact).
fn run_host(project: &Path, args: &[String]) -> String {
    make(project, &["host"]);
    let mut argv = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => {
                argv.push(k.to_string());
                argv.push(v.to_string());
            }
            None => argv.push(a.clone()),
        }
    }
    let out = Command::new(project.join("build/host/app"))
        .args(&argv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn emulated_boards_print_the_same_text_and_board_builds_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "tiny_gpt");
    for board in [
        "STM32H7",
        "STM32N6570-DK",
        "STM32MP157F-DK2",
        "STM32MP257F-EV1",
    ] {
        let (int8, project) = deploy(tmp.path(), &float, board, &SAMPLE);
        let want = predicted(tmp.path(), &int8, &SAMPLE);
        assert_eq!(
            make(&project, &["run-qemu"]),
            format!("{want}\n"),
            "{board}"
        );
        // Greedy with another token count through -D overrides.
        let greedy = [
            "prediction.prompt=alice was beginning",
            "prediction.max_tokens=9",
            "prediction.strategy=greedy",
        ];
        let want = predicted(tmp.path(), &int8, &greedy);
        let got = make(
            &project,
            &["run-qemu", "EXTRA_CFLAGS=-DTZ_MAX_TOKENS=9 -DTZ_GREEDY=1"],
        );
        assert_eq!(got, format!("{want}\n"), "{board} greedy");
        // The real board build links with its own memory map.
        let sizes = make(&project, &["size"]);
        assert!(sizes.contains(".text"), "{board}: {sizes}");
    }
}

#[test]
fn the_project_has_the_documented_files() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "tiny_gpt");
    let (_, project) = deploy(tmp.path(), &float, "STM32H7", &[]);
    for f in [
        "Makefile",
        "README.md",
        "src/model.h",
        "src/model.c",
        "src/embedding.h",
        "src/tokenizer.h",
        "src/tokenizer.c",
        "src/app_config.h",
        "src/textzoo_rt.c",
        "src/app.c",
    ] {
        assert!(project.join(f).is_file(), "{f} missing");
    }
    let model_h = std::fs::read_to_string(project.join("src/model.h")).unwrap();
    assert!(model_h.contains("TZ_ARENA_BYTES"), "{model_h}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(
        readme.contains("STM32H7") || readme.contains("H743"),
        "{readme}"
    );
}

#[test]
fn a_model_too_large_for_the_board_is_refused_with_the_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("big");
    // ~3.3 M int8 weights: more than the STM32H7's 2 MB of flash.
    let ran = textzoo(&with(
        &tiny(&run),
        &[
            "operation_mode=training",
            "model.name=tiny_gpt",
            "model.embed_dim=256",
            "model.ffn_dim=1024",
            "model.num_layers=4",
            "model.num_heads=4",
            "training.max_steps=1",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let float = run.join("saved_models/model.safetensors");
    let quant = tmp.path().join("big_q");
    let model = format!("general.model_path={}", float.display());
    let ran = textzoo(&with(
        &tiny(&quant),
        &["operation_mode=quantization", &model],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let int8 = quant.join("quantized_models/model_int8.safetensors");
    let model = format!("general.model_path={}", int8.display());

    let refused = tmp.path().join("refused");
    let ran = textzoo(&with(
        &tiny(&refused),
        &[
            "operation_mode=deployment",
            &model,
            "deployment.hardware_setup.board=STM32H7",
        ],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    let msg = ran.all();
    assert!(msg.contains("does not fit"), "{msg}");
    assert!(msg.contains("flash needs"), "{msg}");
    assert!(msg.contains("too much"), "{msg}");
    assert!(!msg.contains("RAM needs"), "RAM fits: {msg}");
    assert!(is_absent_or_empty(&refused), "nothing written");

    // The same model fits the STM32N6570-DK's external flash.
    let ok = tmp.path().join("n6");
    let ran = textzoo(&with(
        &tiny(&ok),
        &[
            "operation_mode=deployment",
            &model,
            "deployment.hardware_setup.board=STM32N6570-DK",
        ],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert!(ok.join("c_project/src/model.c").is_file());
}

#[test]
fn float_models_and_foreign_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "gru");
    let run = tmp.path().join("float");
    let model = format!("general.model_path={}", float.display());
    let ran = textzoo(&with(&tiny(&run), &["operation_mode=deployment", &model]));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.all().contains("chain_qd"), "{}", ran.all());
    assert!(is_absent_or_empty(&run));

    let mine = tmp.path().join("my_firmware");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    let target = format!("deployment.c_project_path={}", mine.display());
    let ran = textzoo(&with(
        &tiny(&tmp.path().join("qd")),
        &["operation_mode=chain_qd", &model, &target],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.all().contains("did not generate"), "{}", ran.all());
    // Refused before the run directory exists.
    assert!(is_absent_or_empty(&tmp.path().join("qd")));
    assert_eq!(
        std::fs::read_to_string(mine.join("main.c")).unwrap(),
        "int main(void) { return 0; }\n"
    );
}

#[test]
fn model_to_c_writes_sources_that_compile_for_your_own_firmware() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "lstm");
    let (int8, _) = deploy(tmp.path(), &float, "host", &[]);
    let out = tmp.path().join("headers");
    let ran = textzoo(&[
        "model-to-c",
        int8.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    for f in [
        "model.h",
        "model.c",
        "embedding.h",
        "tokenizer.h",
        "tokenizer.c",
        "textzoo_rt.h",
    ] {
        assert!(out.join(f).is_file(), "{f}: {}", ran.stdout);
    }
    assert!(!out.join("app.c").exists() && !out.join("Makefile").exists());
    for c in [
        "model.c",
        "tokenizer.c",
        "textzoo_rt.c",
        "tz_sample.c",
        "tz_text.c",
    ] {
        let status = Command::new("cc")
            .args([
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-ffp-contract=off",
                "-c",
            ])
            .arg(out.join(c))
            .arg("-o")
            .arg(out.join(format!("{c}.o")))
            .status()
            .unwrap();
        assert!(status.success(), "{c} does not compile");
    }
    // A float model is refused.
    let ran = textzoo(&[
        "model-to-c",
        float.to_str().unwrap(),
        "-o",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.all().contains("int8"), "{}", ran.all());
}

/// `prediction.repetition_penalty` and `prediction.no_repeat_ngram_size` reach the app's
/// defaults (app_config.h) and its sampler applies them as textzoo-rt does: the host build
/// and the STM32H7 stand-in under QEMU print generated.txt, sampling and greedy.
#[test]
fn repetition_controls_give_the_same_text_on_host_and_under_qemu() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "tiny_gpt");
    let controls = [
        "prediction.prompt=alice was beginning",
        "prediction.max_tokens=24",
        "prediction.strategy=sample",
        "prediction.temperature=0.9",
        "prediction.seed=11",
        "prediction.repetition_penalty=1.8",
        "prediction.no_repeat_ngram_size=2",
    ];
    let (int8, project) = deploy(tmp.path(), &float, "STM32H7", &controls);
    let config = std::fs::read_to_string(project.join("src/app_config.h")).unwrap();
    assert!(
        config.contains("#define TZ_REPETITION_PENALTY ((float)1.8)")
            && config.contains("#define TZ_NO_REPEAT_NGRAM_SIZE 2"),
        "{config}"
    );
    let want = predicted(tmp.path(), &int8, &controls);
    assert_eq!(make(&project, &["run-host"]), format!("{want}\n"), "host");
    assert_eq!(make(&project, &["run-qemu"]), format!("{want}\n"), "qemu");

    // Greedy, with -D overrides of the compiled-in controls.
    let greedy = |penalty: &str, ngram: &str| {
        vec![
            "prediction.prompt=alice was beginning".to_string(),
            "prediction.max_tokens=16".into(),
            "prediction.strategy=greedy".into(),
            format!("prediction.repetition_penalty={penalty}"),
            format!("prediction.no_repeat_ngram_size={ngram}"),
        ]
    };
    let plain = greedy("1.0", "0");
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    let unpenalized = predicted(tmp.path(), &int8, &plain);
    for (penalty, ngram) in [("1.3", "3"), ("1.0", "1"), ("2.5", "0")] {
        let settings = greedy(penalty, ngram);
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        let want = predicted(tmp.path(), &int8, &settings);
        // A 30-step model loops under greedy decoding: the controls must change the text.
        assert_ne!(want, unpenalized, "{penalty} {ngram}");
        let flags = format!(
            "EXTRA_CFLAGS=-DTZ_MAX_TOKENS=16 -DTZ_GREEDY=1 -DTZ_REPETITION_PENALTY={penalty} \
             -DTZ_NO_REPEAT_NGRAM_SIZE={ngram}"
        );
        for target in ["run-host", "run-qemu"] {
            let got = make(&project, &[target, &flags]);
            assert_eq!(got, format!("{want}\n"), "{target} {penalty} {ngram}");
        }
    }
}

/// Out-of-range controls are refused before any run directory exists; the n-gram size is
/// bounded by the model's own window (here seq_len 8).
#[test]
fn repetition_controls_out_of_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "gru");
    let model = format!("general.model_path={}", float.display());
    for (setting, needle) in [
        ("prediction.repetition_penalty=0", "(0, 10]"),
        ("prediction.repetition_penalty=11", "(0, 10]"),
        ("prediction.no_repeat_ngram_size=9", "[0, 8]"),
        ("prediction.no_repeat_ngram_size=-1", "no_repeat_ngram_size"),
    ] {
        let run = tmp.path().join("refused");
        let run_dir = format!("hydra.run.dir={}", run.display());
        let ran = textzoo(&["operation_mode=prediction", &model, &run_dir, setting]);
        assert_eq!(ran.code, 2, "{setting}: {}", ran.all());
        assert!(ran.all().contains(needle), "{setting}: {}", ran.all());
        assert!(is_absent_or_empty(&run), "{setting}");
    }
    // chain_qd from the float model: refused before quantizing, by the same window.
    let run = tmp.path().join("refused_qd");
    let run_dir = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "operation_mode=chain_qd",
        &model,
        &run_dir,
        "prediction.no_repeat_ngram_size=9",
    ]);
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(ran.all().contains("[0, 8]"), "{}", ran.all());
    assert!(is_absent_or_empty(&run));
    // In range: generated, and the settings are recorded with the text.
    let run = tmp.path().join("ok");
    let run_dir = format!("hydra.run.dir={}", run.display());
    let ran = textzoo(&[
        "operation_mode=prediction",
        &model,
        &run_dir,
        "prediction.repetition_penalty=1.2",
        "prediction.no_repeat_ngram_size=8",
    ]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let metrics = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    assert_eq!(metrics["prediction"]["repetition_penalty"], 1.2);
    assert_eq!(metrics["prediction"]["no_repeat_ngram_size"], 8);
}

/// `size -A -d` of an ELF: (section, bytes) for the sections that matter on a board.
fn sections(elf: &Path) -> Vec<(String, u64)> {
    let out = Command::new("arm-none-eabi-size")
        .args(["-A", "-d"])
        .arg(elf)
        .output()
        .expect("arm-none-eabi-size (installed by .ci/run)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let size = w.next()?.parse().ok()?;
            [".vectors", ".text", ".rodata", ".data", ".bss", ".stack"]
                .contains(&name)
                .then(|| (name.to_string(), size))
        })
        .collect()
}

/// What a CubeMX-generated main.c does with textzoo's middleware, minus the HAL: the clocks
/// are left alone (a Cube project would call its SystemClock_Config here), then the two
/// entry points.
const CUBE_STYLE_MAIN: &str = "#include \"platform.h\"\n#include \"textzoo_app.h\"\n\
int main(int argc, char **argv)\n{\n    (void)argc;\n    (void)argv;\n    \
/* HAL_Init(); SystemClock_Config(); MX_GPIO_Init(); ... (CubeMX's) */\n    \
MX_TEXTZOO_Init();\n    MX_TEXTZOO_Process();\n    tz_platform_exit(0);\n    return 0;\n}\n";

/// The STM32Cube and CMake faces of an STM32H7 project: the CMake build (with its
/// arm-none-eabi toolchain file) gives the Makefile's board firmware section for section, and
/// the middleware folder, linked with a CubeMX-style main.c for the Cortex-M7 stand-in, prints
/// exactly generated.txt.
#[test]
fn cmake_and_the_cube_middleware_build_the_same_firmware() {
    let tmp = tempfile::tempdir().unwrap();
    let float = trained(tmp.path(), "tiny_gpt");
    let (int8, project) = deploy(tmp.path(), &float, "STM32H7", &SAMPLE);
    for f in [
        "CMakeLists.txt",
        "cmake/gcc-arm-none-eabi.cmake",
        "INTEGRATION.md",
        "Middlewares/Third_Party/textzoo/Inc/textzoo_app.h",
        "Middlewares/Third_Party/textzoo/Src/model.c",
    ] {
        assert!(project.join(f).is_file(), "{f} missing");
    }

    make(&project, &["board"]);
    let cmake = |args: &[&str]| {
        let out = Command::new("cmake")
            .args(args)
            .current_dir(&project)
            .output()
            .expect("cmake (installed by .ci/run)");
        assert!(
            out.status.success(),
            "cmake {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cmake(&[
        "-S",
        ".",
        "-B",
        "build/cmake",
        "-DCMAKE_TOOLCHAIN_FILE=cmake/gcc-arm-none-eabi.cmake",
    ]);
    cmake(&["--build", "build/cmake"]);
    let by_make = sections(&project.join("build/board/app"));
    assert_eq!(by_make.len(), 6, "{by_make:?}");
    assert_eq!(sections(&project.join("build/cmake/app")), by_make);
    for image in ["app.hex", "app.bin", "app.map"] {
        assert!(project.join("build/cmake").join(image).is_file(), "{image}");
    }

    // The middleware with a CubeMX-style main, for the QEMU stand-in (semihosting instead of
    // the UART driver, textzoo's startup standing in for CubeMX's).
    let mw = project.join("Middlewares/Third_Party/textzoo");
    std::fs::write(tmp.path().join("main.c"), CUBE_STYLE_MAIN).unwrap();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(mw.join("Src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("platform_uart.c"))
        .collect();
    sources.sort();
    let elf = tmp.path().join("cube_app");
    let out = Command::new("arm-none-eabi-gcc")
        .args([
            "-mcpu=cortex-m7",
            "-mthumb",
            "-mfpu=fpv5-d16",
            "-mfloat-abi=hard",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "-ffp-contract=off",
            "-ffunction-sections",
            "-fdata-sections",
            "-DTZ_QEMU",
        ])
        .arg(format!("-I{}", mw.join("Inc").display()))
        .arg("-o")
        .arg(&elf)
        .arg(tmp.path().join("main.c"))
        .args(&sources)
        .args([
            "src/platform/platform_semihost.c",
            "src/boards/startup_cortexm.c",
            "src/boards/clocks_stm32.c",
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            "-Lsrc/boards",
            "-Wl,--gc-sections",
            "-Tsrc/boards/mps2-an500/mps2-an500.ld",
            "-lm",
        ])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("qemu-system-arm")
        .args([
            "-M",
            "mps2-an500",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-chardev",
            "stdio,id=sh0",
            "-semihosting-config",
            "enable=on,target=native,chardev=sh0",
            "-kernel",
        ])
        .arg(&elf)
        .output()
        .expect("qemu-system-arm (installed by .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = predicted(tmp.path(), &int8, &SAMPLE);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{want}\n"));
}
