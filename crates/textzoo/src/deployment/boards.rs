//! Board profiles and the platform half of the generated C project (DESIGN §7).
//!
//! A profile carries what the memory-fit check, the benchmark's clock-based estimates and the
//! generated Makefile need to know about a board. [`project_files`] returns the board-specific
//! files of the project: the platform layer (`src/platform.h`, `src/platform/*.c`), startup
//! code and linker scripts for the bare-metal boards and their QEMU stand-ins, the Makefile,
//! the board README and the QEMU instruction-counting plugin (`tools/insn_count.c`).
//!
//! QEMU has no STM32H7 or STM32N6 machine, so firmware for those boards is also built for a
//! stand-in with the same CPU (`mps2-an500`: Cortex-M7, `mps3-an547`: Cortex-M55) and talks
//! through semihosting there; the real-board build differs only in platform file and linker
//! script, so what runs under QEMU is the same compiled application code.

use crate::config::Board;

/// How `make run-qemu` executes the board's firmware on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// Full-system emulation of a stand-in machine with semihosting (bare-metal boards).
    System {
        binary: &'static str,
        machine: &'static str,
    },
    /// User-mode emulation of a static Linux binary (MPU boards); no binfmt, so it is named.
    User {
        binary: &'static str,
        cpu: &'static str,
    },
    /// No emulation: the host build runs natively.
    Native,
}

/// What the deployment and benchmarking stages know about a board.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardProfile {
    pub board: Board,
    /// Board name as sold.
    pub name: &'static str,
    /// The chip on it.
    pub chip: &'static str,
    pub cpu: &'static str,
    pub cores: u32,
    /// CPU clock at full speed (the benchmark's tokens/s estimate divides by it).
    pub clock_hz: u64,
    /// Runs without an OS: needs startup code and a linker script, prints over a UART.
    pub bare_metal: bool,
    /// C compiler for the board (and its QEMU stand-in).
    pub cc: &'static str,
    /// Prefix of the matching binutils (`nm`, `size`, `objcopy`); empty for the host.
    pub binutils_prefix: &'static str,
    /// CPU/FPU/ABI flags, identical for the board and its stand-in.
    pub cpu_flags: &'static [&'static str],
    /// Flash for code + const data (weights); `None` when the program lives in a file system.
    pub flash_bytes: Option<u64>,
    /// RAM for `.data` + `.bss` (arena, KV cache, buffers) and the stack together, i.e. what
    /// the linker scripts give both; `None` for the host, which has no fixed budget. On Linux
    /// boards this is the DDR, shared with the OS.
    pub ram_bytes: Option<u64>,
    /// Stack reserved by the linker script (bare metal) or the usual 8 MiB Linux limit; part
    /// of `ram_bytes`.
    pub stack_bytes: u64,
    /// Where the firmware runs on this machine.
    pub emulator: Emulator,
    /// Linker script of the real board, relative to the project root.
    pub linker_script: Option<&'static str>,
    /// Linker script of the QEMU stand-in, relative to the project root.
    pub qemu_linker_script: Option<&'static str>,
    pub description: &'static str,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

const M7_FLAGS: &[&str] = &[
    "-mcpu=cortex-m7",
    "-mthumb",
    "-mfpu=fpv5-d16",
    "-mfloat-abi=hard",
];
/// gcc 12 picks FPv5-D16 + MVE (Helium, `__ARM_FEATURE_MVE`) from `-mcpu=cortex-m55`.
const M55_FLAGS: &[&str] = &["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"];
const A7_FLAGS: &[&str] = &["-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"];
const A35_FLAGS: &[&str] = &["-mcpu=cortex-a35"];

/// Stack reserved by every bare-metal linker script (the runtime's buffers are static).
const MCU_STACK: u64 = 32 * KIB;

/// The profile of `board`.
pub fn profile(board: Board) -> BoardProfile {
    match board {
        Board::Stm32H7 => BoardProfile {
            board,
            name: "NUCLEO-H743ZI2",
            chip: "STM32H743ZI",
            cpu: "Cortex-M7",
            cores: 1,
            clock_hz: 480_000_000,
            bare_metal: true,
            cc: "arm-none-eabi-gcc",
            binutils_prefix: "arm-none-eabi-",
            cpu_flags: M7_FLAGS,
            flash_bytes: Some(2 * MIB),
            // 512 KiB AXI SRAM for data, plus the stack reserved in the 128 KiB DTCM.
            ram_bytes: Some(512 * KIB + MCU_STACK),
            stack_bytes: MCU_STACK,
            emulator: Emulator::System {
                binary: "qemu-system-arm",
                machine: "mps2-an500",
            },
            linker_script: Some("src/boards/stm32h743zi/stm32h743zi.ld"),
            qemu_linker_script: Some("src/boards/mps2-an500/mps2-an500.ld"),
            description: "Cortex-M7 at 480 MHz, 2 MiB flash (code + weights), 512 KiB AXI \
                          SRAM for arena/KV cache/buffers, 32 KiB stack in DTCM, output on \
                          USART3 (ST-LINK virtual COM port, 115200 8N1)",
        },
        Board::Stm32N6 => BoardProfile {
            board,
            name: "STM32N6570-DK",
            chip: "STM32N657X0",
            cpu: "Cortex-M55",
            cores: 1,
            clock_hz: 800_000_000,
            bare_metal: true,
            cc: "arm-none-eabi-gcc",
            binutils_prefix: "arm-none-eabi-",
            cpu_flags: M55_FLAGS,
            // The application area of the 128 MiB octo-SPI NOR after the FSBL's first MiB
            // and the 1 KiB signing header (see the linker script).
            flash_bytes: Some(128 * MIB - MIB - KIB),
            // FLEXRAM + AXISRAM1 + AXISRAM2: the 2 MiB that are on at reset, stack included.
            ram_bytes: Some(2 * MIB),
            stack_bytes: MCU_STACK,
            emulator: Emulator::System {
                binary: "qemu-system-arm",
                machine: "mps3-an547",
            },
            linker_script: Some("src/boards/stm32n657/stm32n657.ld"),
            qemu_linker_script: Some("src/boards/mps3-an547/mps3-an547.ld"),
            description: "Cortex-M55 (Helium) at 800 MHz, code and weights executed in place \
                          from the external octo-SPI flash at 0x70100400, 2 MiB AXISRAM for \
                          data and stack, output on USART1 (ST-LINK virtual COM port); the \
                          Neural-ART NPU is not used",
        },
        Board::Stm32Mp157 => BoardProfile {
            board,
            name: "STM32MP157F-DK2",
            chip: "STM32MP157F",
            cpu: "Cortex-A7",
            cores: 2,
            clock_hz: 800_000_000,
            bare_metal: false,
            cc: "arm-linux-gnueabihf-gcc",
            binutils_prefix: "arm-linux-gnueabihf-",
            cpu_flags: A7_FLAGS,
            flash_bytes: None,
            ram_bytes: Some(512 * MIB),
            stack_bytes: 8 * MIB,
            emulator: Emulator::User {
                binary: "qemu-arm",
                cpu: "cortex-a7",
            },
            linker_script: None,
            qemu_linker_script: None,
            description: "2x Cortex-A7 at 800 MHz running OpenSTLinux, 512 MiB DDR; a static \
                          armhf executable printing to stdout (one thread)",
        },
        Board::Stm32Mp257 => BoardProfile {
            board,
            name: "STM32MP257F-EV1",
            chip: "STM32MP257F",
            cpu: "Cortex-A35",
            cores: 2,
            clock_hz: 1_500_000_000,
            bare_metal: false,
            cc: "aarch64-linux-gnu-gcc",
            binutils_prefix: "aarch64-linux-gnu-",
            cpu_flags: A35_FLAGS,
            flash_bytes: None,
            ram_bytes: Some(4096 * MIB),
            stack_bytes: 8 * MIB,
            emulator: Emulator::User {
                binary: "qemu-aarch64",
                cpu: "cortex-a35",
            },
            linker_script: None,
            qemu_linker_script: None,
            description: "2x Cortex-A35 at 1.5 GHz running OpenSTLinux, 4 GiB DDR; a static \
                          aarch64 executable printing to stdout (one thread)",
        },
        Board::Host => BoardProfile {
            board,
            name: "host",
            chip: "host",
            cpu: "host CPU",
            cores: 1,
            clock_hz: 0,
            bare_metal: false,
            cc: "cc",
            binutils_prefix: "",
            cpu_flags: &[],
            flash_bytes: None,
            ram_bytes: None,
            stack_bytes: 8 * MIB,
            emulator: Emulator::Native,
            linker_script: None,
            qemu_linker_script: None,
            description: "this machine, built with the system C compiler; no memory budget \
                          (clock_hz is 0: unknown)",
        },
    }
}

const PLATFORM_H: &str = include_str!("c/platform.h");
const PLATFORM_HOST_C: &str = include_str!("c/platform/platform_host.c");
const PLATFORM_SEMIHOST_C: &str = include_str!("c/platform/platform_semihost.c");
const PLATFORM_UART_C: &str = include_str!("c/platform/platform_uart.c");
const STARTUP_CORTEXM_C: &str = include_str!("c/boards/startup_cortexm.c");
const SECTIONS_LD: &str = include_str!("c/boards/cortexm_sections.ld");
const AN500_LD: &str = include_str!("c/boards/mps2-an500/mps2-an500.ld");
const AN547_LD: &str = include_str!("c/boards/mps3-an547/mps3-an547.ld");
const H743_LD: &str = include_str!("c/boards/stm32h743zi/stm32h743zi.ld");
const N657_LD: &str = include_str!("c/boards/stm32n657/stm32n657.ld");
const MAKEFILE_IN: &str = include_str!("c/Makefile.in");
const INSN_COUNT_C: &str = include_str!("c/tools/insn_count.c");
const README_STM32H7: &str = include_str!("../../../../deployment/README_STM32H7.md");
const README_STM32N6: &str = include_str!("../../../../deployment/README_STM32N6.md");
const README_MPU: &str = include_str!("../../../../deployment/README_MPU.md");
const README_HOST: &str = "# textzoo C project (host build)\n\n\
Build and run with the system C compiler:\n\n\
```sh\nmake run-host                       # build/host/app\n\
make run-host ARGS='--greedy --max-tokens 20'\n```\n\n\
`make host EXTRA_CFLAGS='-fsanitize=address,undefined'` builds with the sanitizers. For a \
microcontroller or STM32MP board, generate the project again with \
`deployment.hardware_setup.board` set to it.\n";

const SEMIHOST_SRC: &str = "src/platform/platform_semihost.c";
const UART_SRC: &str = "src/platform/platform_uart.c";
const STARTUP_SRC: &str = "src/boards/startup_cortexm.c";
const SECTIONS_PATH: &str = "src/boards/cortexm_sections.ld";

/// The board-specific files of the generated project, as (path from the project root,
/// contents). The application sources (`src/model.c`, `src/app.c`, ...) come from the other
/// generators; the Makefile compiles every `src/*.c` plus the platform files listed here.
pub fn project_files(board: Board) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&'static str, String)> = vec![
        ("Makefile", makefile(board)),
        ("src/platform.h", PLATFORM_H.to_string()),
        ("src/platform/platform_host.c", PLATFORM_HOST_C.to_string()),
        ("tools/insn_count.c", INSN_COUNT_C.to_string()),
    ];
    let readme = match board {
        Board::Stm32H7 => README_STM32H7,
        Board::Stm32N6 => README_STM32N6,
        Board::Stm32Mp157 | Board::Stm32Mp257 => README_MPU,
        Board::Host => README_HOST,
    };
    files.push(("README.md", readme.to_string()));
    let scripts: &[(&'static str, &str)] = match board {
        Board::Stm32H7 => &[
            ("src/boards/mps2-an500/mps2-an500.ld", AN500_LD),
            ("src/boards/stm32h743zi/stm32h743zi.ld", H743_LD),
        ],
        Board::Stm32N6 => &[
            ("src/boards/mps3-an547/mps3-an547.ld", AN547_LD),
            ("src/boards/stm32n657/stm32n657.ld", N657_LD),
        ],
        Board::Stm32Mp157 | Board::Stm32Mp257 | Board::Host => &[],
    };
    if !scripts.is_empty() {
        files.push((SEMIHOST_SRC, PLATFORM_SEMIHOST_C.to_string()));
        files.push((UART_SRC, PLATFORM_UART_C.to_string()));
        files.push((STARTUP_SRC, STARTUP_CORTEXM_C.to_string()));
        files.push((SECTIONS_PATH, SECTIONS_LD.to_string()));
        files.extend(scripts.iter().map(|(p, s)| (*p, s.to_string())));
    }
    files
}

/// The variables one build (QEMU stand-in or real board) of the Makefile is made of.
#[derive(Clone)]
struct MakeBuild {
    kind: &'static str,
    cc: String,
    /// Binutils prefix; `None` uses the Makefile's `HOST_*` tools.
    prefix: Option<String>,
    arch: String,
    defs: &'static str,
    platform: String,
    ldflags: String,
    lddeps: String,
}

impl MakeBuild {
    fn write(&self, var: &str, out: &mut String) {
        let tool = |name: &str| match &self.prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => format!("$(HOST_{})", name.to_uppercase()),
        };
        let lines = [
            ("KIND", self.kind.to_string()),
            ("CC", self.cc.clone()),
            ("NM", tool("nm")),
            ("SIZE", tool("size")),
            ("OBJCOPY", tool("objcopy")),
            ("ARCH", self.arch.clone()),
            ("DEFS", self.defs.to_string()),
            ("PLATFORM", self.platform.clone()),
            ("LDFLAGS", self.ldflags.clone()),
            ("LDDEPS", self.lddeps.clone()),
        ];
        for (name, value) in lines {
            let op = if name == "CC" { "?=" } else { ":=" };
            out.push_str(&format!("{var}_{name} {op} {value}\n"));
        }
    }
}

fn makefile(board: Board) -> String {
    let p = profile(board);
    let arch = p.cpu_flags.join(" ");
    let hosted = |defs: &'static str| MakeBuild {
        kind: "hosted",
        cc: p.cc.to_string(),
        prefix: Some(p.binutils_prefix.to_string()),
        arch: arch.clone(),
        defs,
        platform: "src/platform/platform_host.c".to_string(),
        ldflags: "-static -lm".to_string(),
        lddeps: String::new(),
    };
    let mcu = |defs: &'static str, script: Option<&str>| {
        let script = script.unwrap_or_default();
        MakeBuild {
            kind: "mcu",
            cc: p.cc.to_string(),
            prefix: Some(p.binutils_prefix.to_string()),
            arch: arch.clone(),
            defs,
            platform: format!(
                "{} {STARTUP_SRC}",
                if defs.contains("TZ_QEMU") {
                    SEMIHOST_SRC
                } else {
                    UART_SRC
                }
            ),
            ldflags: format!("-T{script} -lm"),
            lddeps: format!("{script} {SECTIONS_PATH}"),
        }
    };
    let native = MakeBuild {
        kind: "hosted",
        cc: "$(HOST_CC)".to_string(),
        prefix: None,
        arch: String::new(),
        defs: "-DTZ_HOST",
        platform: "src/platform/platform_host.c".to_string(),
        ldflags: "-lm".to_string(),
        lddeps: String::new(),
    };
    let (qemu, real, images) = match board {
        Board::Stm32H7 => (
            mcu("-DTZ_QEMU -DTZ_QEMU_MPS2_AN500", p.qemu_linker_script),
            mcu("-DTZ_BOARD_STM32H743ZI -DTZ_ENABLE_CACHES", p.linker_script),
            "build/board/app.hex build/board/app.bin",
        ),
        Board::Stm32N6 => (
            mcu("-DTZ_QEMU -DTZ_QEMU_MPS3_AN547", p.qemu_linker_script),
            mcu("-DTZ_BOARD_STM32N657 -DTZ_ENABLE_CACHES", p.linker_script),
            "build/board/app.hex build/board/app.bin",
        ),
        Board::Stm32Mp157 | Board::Stm32Mp257 => (
            hosted("-DTZ_HOST -DTZ_LINUX_MPU -DTZ_QEMU"),
            hosted("-DTZ_HOST -DTZ_LINUX_MPU"),
            "",
        ),
        Board::Host => (native.clone(), native, ""),
    };
    let (emu, kernel_opt) = match p.emulator {
        Emulator::System { binary, machine } => (
            format!(
                "{binary} -M {machine} -nographic -monitor none -serial none \
                 -chardev stdio,id=sh0 -semihosting-config enable=on,target=native,chardev=sh0"
            ),
            "-kernel",
        ),
        Emulator::User { binary, cpu } => (format!("{binary} -cpu {cpu}"), ""),
        Emulator::Native => (String::new(), ""),
    };
    let mut out = format!(
        "# Generated by textzoo for {} ({}, {} at {} MHz).\n\
         # qemu: {}; board: {}.\n\
         TZ_BOARD := {}\n\n",
        p.name,
        p.chip,
        p.cpu,
        p.clock_hz / 1_000_000,
        match p.emulator {
            Emulator::System { machine, .. } => format!("QEMU {machine} stand-in, semihosting"),
            Emulator::User { binary, .. } => format!("static Linux build run by {binary}"),
            Emulator::Native => "same as host".to_string(),
        },
        p.linker_script.unwrap_or(if p.bare_metal {
            ""
        } else {
            "static Linux build"
        }),
        board_config_name(board),
    );
    qemu.write("QEMU", &mut out);
    out.push_str(&format!(
        "QEMU_EMU := {emu}\nQEMU_KERNEL_OPT := {kernel_opt}\n\n"
    ));
    real.write("BOARD", &mut out);
    out.push_str(&format!("BOARD_IMAGES := {images}\n\n"));
    out.push_str(MAKEFILE_IN);
    out
}

/// The board's name as written in the config (`deployment.hardware_setup.board`).
fn board_config_name(board: Board) -> &'static str {
    match board {
        Board::Stm32H7 => "STM32H7",
        Board::Stm32N6 => "STM32N6570-DK",
        Board::Stm32Mp157 => "STM32MP157F-DK2",
        Board::Stm32Mp257 => "STM32MP257F-EV1",
        Board::Host => "host",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Output};

    /// Stand-in for the generated application: prints through the platform layer, marks three
    /// phases, does float work the FPU must be on for, and exits with TZ_EXIT_CODE.
    /// TZ_BIG_FLASH / TZ_BIG_RAM pull in arrays no board can hold.
    const FAKE_APP: &str = r#"#include "platform.h"
#include <stdint.h>
#ifndef TZ_EXIT_CODE
#define TZ_EXIT_CODE 3
#endif
#if defined(TZ_BIG_FLASH)
extern const unsigned char tz_big[];
#endif
#if defined(TZ_BIG_RAM)
static unsigned char tz_big_ram[3u * 1024u * 1024u];
#endif
volatile float tz_in = 1.5f;
static void put_u32(uint32_t v)
{
    char tmp[12];
    char out[12];
    int k = 0;
    int j;
    do {
        tmp[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    for (j = 0; j < k; j++) {
        out[j] = tmp[k - 1 - j];
    }
    out[k] = '\n';
    tz_platform_write(out, k + 1);
}
int main(int argc, char **argv)
{
    static const char hello[] = "hello from textzoo\n";
    float x = tz_in;
    int i;
    (void)argc;
    (void)argv;
    tz_platform_init();
    tz_platform_write(hello, (int)sizeof hello - 1);
    for (i = 0; i < 3; i++) {
        x = x * x / 3.0f + 0.25f;
        tz_platform_mark();
    }
    put_u32((uint32_t)(x * 1000.0f));
#if defined(TZ_BIG_FLASH)
    put_u32(tz_big[(uint32_t)x]);
#endif
#if defined(TZ_BIG_RAM)
    tz_big_ram[(uint32_t)x] = 1;
    put_u32(tz_big_ram[1]);
#endif
    return TZ_EXIT_CODE;
}
"#;
    const FAKE_MODEL: &str = "#if defined(TZ_BIG_FLASH)\n\
        const unsigned char tz_big[3u * 1024u * 1024u] = {1};\n\
        #else\nextern int tz_fake_model_unused;\n#endif\n";
    const EXPECTED: &str = "hello from textzoo\n363\n";

    fn need(tool: &str) {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "`{tool}` is missing: the deployment tests need make, cc, arm-none-eabi-gcc + newlib, \
             arm-linux-gnueabihf-gcc / aarch64-linux-gnu-gcc with libc6-dev-armhf-cross / \
             libc6-dev-arm64-cross, qemu-system-arm and qemu-user (.ci/run installs them)"
        );
    }

    fn project(board: Board) -> tempfile::TempDir {
        need("make");
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in project_files(board) {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        std::fs::write(dir.path().join("src/app.c"), FAKE_APP).expect("write app.c");
        std::fs::write(dir.path().join("src/model.c"), FAKE_MODEL).expect("write model.c");
        dir
    }

    fn make(dir: &Path, args: &[&str]) -> Output {
        Command::new("make")
            .arg("-s")
            .arg("--no-print-directory")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run make")
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// `make <target>` prints the program's text on stdout and the recipe fails with the
    /// program's exit code 3; running the emulator command alone returns it exactly.
    fn check_run(board: Board, run: &str, print_cmd: &str) {
        let dir = project(board);
        let out = make(dir.path(), &[run]);
        assert_eq!(
            text(&out.stdout),
            EXPECTED,
            "{board:?} {run}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("Error 3"),
            "{board:?} {run} should pass exit code 3 on: {}",
            text(&out.stderr)
        );
        // The exact code, and a rebuild when EXTRA_CFLAGS changes.
        let out = make(dir.path(), &[run, "EXTRA_CFLAGS=-DTZ_EXIT_CODE=0"]);
        assert!(out.status.success(), "{board:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), EXPECTED);
        let cmd = make(dir.path(), &[print_cmd, "EXTRA_CFLAGS=-DTZ_EXIT_CODE=0"]);
        let cmd = text(&cmd.stdout);
        let _ = make(dir.path(), &[run, "EXTRA_CFLAGS=-DTZ_EXIT_CODE=42"]);
        let mut words = cmd.split_whitespace();
        let program = words.next().expect("command");
        // A relative program path is resolved here, not against the test's directory.
        let program = if program.contains('/') {
            dir.path().join(program).into_os_string()
        } else {
            program.into()
        };
        let status = Command::new(program)
            .args(words)
            .current_dir(dir.path())
            .output()
            .expect("run program");
        assert_eq!(text(&status.stdout), EXPECTED);
        assert_eq!(status.status.code(), Some(42), "{board:?}: {cmd}");
    }

    #[test]
    fn host_runs() {
        need("cc");
        check_run(Board::Host, "run-host", "host-cmd");
        check_run(Board::Host, "run-qemu", "qemu-cmd");
    }

    #[test]
    fn stm32h7_runs_on_mps2_an500() {
        need("arm-none-eabi-gcc");
        need("qemu-system-arm");
        check_run(Board::Stm32H7, "run-qemu", "qemu-cmd");
    }

    #[test]
    fn stm32n6_runs_on_mps3_an547() {
        need("arm-none-eabi-gcc");
        need("qemu-system-arm");
        check_run(Board::Stm32N6, "run-qemu", "qemu-cmd");
    }

    #[test]
    fn mpu_boards_run_under_user_mode_qemu() {
        need("arm-linux-gnueabihf-gcc");
        need("aarch64-linux-gnu-gcc");
        need("qemu-arm");
        need("qemu-aarch64");
        check_run(Board::Stm32Mp157, "run-qemu", "qemu-cmd");
        check_run(Board::Stm32Mp257, "run-qemu", "qemu-cmd");
    }

    #[test]
    fn board_builds_link_with_real_memory_maps() {
        need("arm-none-eabi-gcc");
        for (board, sections) in [
            (Board::Stm32H7, ["0x8000000", "0x24000000", "0x20000000"]),
            (Board::Stm32N6, ["0x70100400", "0x34000000", "0x34000000"]),
        ] {
            let dir = project(board);
            let out = make(dir.path(), &["board"]);
            assert!(out.status.success(), "{board:?}: {}", text(&out.stderr));
            for image in ["build/board/app.hex", "build/board/app.bin"] {
                assert!(dir.path().join(image).is_file(), "{board:?}: no {image}");
            }
            // `size -A -x`: .vectors in flash, .bss in RAM, .stack where the script says.
            let out = Command::new("arm-none-eabi-size")
                .args(["-A", "-x", "build/board/app"])
                .current_dir(dir.path())
                .output()
                .expect("size");
            let listing = text(&out.stdout);
            let addr = |name: &str| {
                listing
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(2))
                    .unwrap_or_default()
                    .to_string()
            };
            assert_eq!(addr(".vectors"), sections[0], "{listing}");
            assert!(addr(".bss").starts_with(&sections[1][..6]), "{listing}");
            assert!(addr(".stack").starts_with(&sections[2][..6]), "{listing}");
            let out = make(dir.path(), &["size"]);
            assert!(
                text(&out.stdout).contains(".rodata"),
                "{}",
                text(&out.stdout)
            );
        }
        for board in [Board::Stm32Mp157, Board::Stm32Mp257] {
            let dir = project(board);
            let out = make(dir.path(), &["board"]);
            assert!(out.status.success(), "{board:?}: {}", text(&out.stderr));
        }
    }

    #[test]
    fn oversized_models_fail_to_link_with_the_fit_message() {
        need("arm-none-eabi-gcc");
        let dir = project(Board::Stm32H7);
        let out = make(dir.path(), &["board", "EXTRA_CFLAGS=-DTZ_BIG_FLASH"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("do not fit the STM32H743ZI flash (2048 KiB)"),
            "{}",
            text(&out.stderr)
        );
        // The stand-in has 4 MiB and still takes it.
        let out = make(dir.path(), &["qemu", "EXTRA_CFLAGS=-DTZ_BIG_FLASH"]);
        assert!(out.status.success(), "{}", text(&out.stderr));

        let dir = project(Board::Stm32N6);
        let out = make(dir.path(), &["board", "EXTRA_CFLAGS=-DTZ_BIG_RAM"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("do not fit the STM32N657 AXISRAM (2 MiB)"),
            "{}",
            text(&out.stderr)
        );
    }

    fn counts(board: Board) -> Vec<u64> {
        let dir = project(board);
        let mut runs = Vec::new();
        for _ in 0..2 {
            let out = make(dir.path(), &["count-qemu", "EXTRA_CFLAGS=-DTZ_EXIT_CODE=0"]);
            assert!(out.status.success(), "{board:?}: {}", text(&out.stderr));
            let output = std::fs::read_to_string(dir.path().join("build/qemu/count-output.txt"))
                .expect("program output");
            assert_eq!(output, EXPECTED);
            let numbers: Vec<u64> = text(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(_, n)| n.parse().expect("count"))
                .collect();
            runs.push(numbers);
        }
        assert_eq!(runs[0], runs[1], "{board:?}: counts differ between runs");
        let c = runs.swap_remove(0);
        // total, then three increasing marks below it.
        assert_eq!(c.len(), 4, "{board:?}: {c:?}");
        assert!(
            c[1] < c[2] && c[2] < c[3] && c[3] < c[0],
            "{board:?}: {c:?}"
        );
        c
    }

    #[test]
    fn instruction_counts_repeat_exactly() {
        need("cc");
        need("arm-none-eabi-gcc");
        need("qemu-system-arm");
        need("qemu-arm");
        need("qemu-aarch64");
        for board in [
            Board::Stm32H7,
            Board::Stm32N6,
            Board::Stm32Mp157,
            Board::Stm32Mp257,
        ] {
            counts(board);
        }
    }

    #[test]
    fn makefile_header_names_the_emulator_and_tools() {
        let mk = makefile(Board::Stm32N6);
        for line in [
            "TZ_BOARD := STM32N6570-DK",
            "QEMU_CC ?= arm-none-eabi-gcc",
            "QEMU_ARCH := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard",
            "QEMU_EMU := qemu-system-arm -M mps3-an547 ",
            "BOARD_LDFLAGS := -Tsrc/boards/stm32n657/stm32n657.ld -lm",
        ] {
            assert!(mk.contains(line), "{line} missing in:\n{mk}");
        }
        let mk = makefile(Board::Stm32Mp257);
        assert!(
            mk.contains("QEMU_EMU := qemu-aarch64 -cpu cortex-a35\n"),
            "{mk}"
        );
        assert!(mk.contains("BOARD_NM := aarch64-linux-gnu-nm\n"), "{mk}");
        let mk = makefile(Board::Host);
        assert!(mk.contains("QEMU_EMU := \n") && mk.contains("BOARD_NM := $(HOST_NM)\n"));
    }

    #[test]
    fn profiles_agree_with_the_linker_scripts() {
        let h7 = profile(Board::Stm32H7);
        assert_eq!(h7.flash_bytes, Some(2048 * 1024));
        assert!(H743_LD.contains("LENGTH = 2048K") && H743_LD.contains("LENGTH = 512K"));
        let n6 = profile(Board::Stm32N6);
        assert_eq!(h7.ram_bytes, Some((512 + 32) * 1024));
        assert_eq!(n6.ram_bytes, Some(2048 * 1024));
        assert!(N657_LD.contains("LENGTH = 0x07EFFC00"));
        assert_eq!(n6.flash_bytes, Some(0x07EF_FC00));
        for board in [
            Board::Stm32H7,
            Board::Stm32N6,
            Board::Stm32Mp157,
            Board::Stm32Mp257,
            Board::Host,
        ] {
            let p = profile(board);
            let files = project_files(board);
            for script in [p.linker_script, p.qemu_linker_script]
                .into_iter()
                .flatten()
            {
                assert!(
                    files.iter().any(|(f, _)| *f == script),
                    "{board:?}: {script}"
                );
            }
            assert_eq!(p.bare_metal, p.flash_bytes.is_some());
        }
    }
}
