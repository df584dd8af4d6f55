//! Board profiles and the platform half of the generated C project.
//!
//! Each board is one [`BoardProfile`] row below, holding everything the memory-fit check, the
//! benchmark's clock-based estimates and the generated project need to know about it; code
//! reads the row's fields instead of matching on the board, so adding or changing a board
//! touches one place. [`project_files`] returns the board-specific files of the project: the
//! platform layer (`src/platform.h`, `src/platform/*.c`), startup code and linker scripts for
//! the bare-metal boards and their QEMU stand-ins, the Makefile ([`makefile`]), the board
//! README (`boards/README_*.md` next to this file), the QEMU instruction-counting plugin
//! (`tools/insn_count.c`) and, for the bare-metal boards, the CMake build ([`cmake`]).
//!
//! QEMU has no STM32H7 or STM32N6 machine, so firmware for those boards is also built for a
//! stand-in with the same CPU (`mps2-an500`: Cortex-M7, `mps3-an547`: Cortex-M55) and talks
//! through semihosting there; the real-board build differs only in platform file and linker
//! script, so what runs under QEMU is the same compiled application code.

mod cmake;
mod makefile;

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

/// A static file of the project: where it goes (from the project root) and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub path: &'static str,
    pub text: &'static str,
}

impl Source {
    fn file(self) -> (&'static str, String) {
        (self.path, self.text.to_string())
    }
}

/// How one of the Makefile's two builds (the QEMU stand-in's, the real board's) links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bare metal with the board's cross compiler: the Cortex-M startup code, this platform
    /// layer (semihosting under QEMU, a UART on the board) and this linker script.
    BareMetal { platform: Source, script: Source },
    /// A static Linux executable from the board's cross compiler, printing to stdout; static
    /// so it does not depend on the C library of the board's image.
    StaticLinux,
    /// The host's own compiler and tools.
    Native,
}

/// One build of the firmware in the generated Makefile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// Preprocessor definitions that select the platform's code paths in the C sources.
    pub defs: &'static str,
    pub link: Link,
}

impl Build {
    /// The platform file and linker script of a bare-metal build.
    pub fn bare_metal(&self) -> Option<(Source, Source)> {
        match self.link {
            Link::BareMetal { platform, script } => Some((platform, script)),
            Link::StaticLinux | Link::Native => None,
        }
    }

    /// The linker script, relative to the project root (bare-metal builds only).
    pub fn linker_script(&self) -> Option<&'static str> {
        self.bare_metal().map(|(_, script)| script.path)
    }
}

/// What the deployment and benchmarking stages know about a board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardProfile {
    pub board: Board,
    /// The board's name in the config (`deployment.hardware_setup.board`), as the Makefile's
    /// `TZ_BOARD` repeats it.
    pub config_name: &'static str,
    /// Board name as sold.
    pub name: &'static str,
    /// The chip on it.
    pub chip: &'static str,
    pub cpu: &'static str,
    pub cores: u32,
    /// CPU clock at full speed (the benchmark's tokens/s estimate divides by it).
    pub clock_hz: u64,
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
    /// The build `make qemu` / `run-qemu` / `count-qemu` makes, for `emulator`.
    pub qemu_build: Build,
    /// The build `make board` makes, for the real board.
    pub board_build: Build,
    /// The project's `README.md`: building, flashing and running on this board.
    pub readme: &'static str,
    pub description: &'static str,
}

impl BoardProfile {
    /// Runs without an OS: needs startup code and a linker script, prints over a UART.
    pub fn bare_metal(&self) -> bool {
        self.board_build.bare_metal().is_some()
    }

    /// The two builds, the QEMU stand-in's first.
    fn builds(&self) -> [Build; 2] {
        [self.qemu_build, self.board_build]
    }
}

/// The profile of `board`: a copy of its row below.
pub fn profile(board: Board) -> BoardProfile {
    match board {
        Board::Stm32H7 => STM32H7,
        Board::Stm32N6 => STM32N6,
        Board::Stm32Mp157 => STM32MP157,
        Board::Stm32Mp257 => STM32MP257,
        Board::Host => HOST,
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Stack reserved by every bare-metal linker script (the runtime's buffers are static).
const MCU_STACK: u64 = 32 * KIB;

const PLATFORM_H: Source = Source {
    path: "src/platform.h",
    text: include_str!("c/platform.h"),
};
const PLATFORM_HOST: Source = Source {
    path: "src/platform/platform_host.c",
    text: include_str!("c/platform/platform_host.c"),
};
const PLATFORM_SEMIHOST: Source = Source {
    path: "src/platform/platform_semihost.c",
    text: include_str!("c/platform/platform_semihost.c"),
};
const PLATFORM_UART: Source = Source {
    path: "src/platform/platform_uart.c",
    text: include_str!("c/platform/platform_uart.c"),
};
const STARTUP_CORTEXM: Source = Source {
    path: "src/boards/startup_cortexm.c",
    text: include_str!("c/boards/startup_cortexm.c"),
};
/// The clock tree at full speed (`tz_board_clocks`, called by the startup code): the
/// STM32H743 register sequence under `-DTZ_CLOCK_SETUP`, nothing for the other builds.
const CLOCKS_STM32: Source = Source {
    path: "src/boards/clocks_stm32.c",
    text: include_str!("c/boards/clocks_stm32.c"),
};
/// The section layout every bare-metal linker script includes.
const SECTIONS_LD: Source = Source {
    path: "src/boards/cortexm_sections.ld",
    text: include_str!("c/boards/cortexm_sections.ld"),
};
const AN500_LD: Source = Source {
    path: "src/boards/mps2-an500/mps2-an500.ld",
    text: include_str!("c/boards/mps2-an500/mps2-an500.ld"),
};
const AN547_LD: Source = Source {
    path: "src/boards/mps3-an547/mps3-an547.ld",
    text: include_str!("c/boards/mps3-an547/mps3-an547.ld"),
};
const H743_LD: Source = Source {
    path: "src/boards/stm32h743zi/stm32h743zi.ld",
    text: include_str!("c/boards/stm32h743zi/stm32h743zi.ld"),
};
const N657_LD: Source = Source {
    path: "src/boards/stm32n657/stm32n657.ld",
    text: include_str!("c/boards/stm32n657/stm32n657.ld"),
};
const INSN_COUNT: Source = Source {
    path: "tools/insn_count.c",
    text: include_str!("c/tools/insn_count.c"),
};

/// The Linux boards' builds: the same static executable, told when it runs under QEMU.
const MPU_QEMU_BUILD: Build = Build {
    defs: "-DTZ_HOST -DTZ_LINUX_MPU -DTZ_QEMU",
    link: Link::StaticLinux,
};
const MPU_BOARD_BUILD: Build = Build {
    defs: "-DTZ_HOST -DTZ_LINUX_MPU",
    link: Link::StaticLinux,
};
const README_MPU: &str = include_str!("boards/README_MPU.md");

const STM32H7: BoardProfile = BoardProfile {
    board: Board::Stm32H7,
    config_name: "STM32H7",
    name: "NUCLEO-H743ZI2",
    chip: "STM32H743ZI",
    cpu: "Cortex-M7",
    cores: 1,
    clock_hz: 480_000_000,
    cc: "arm-none-eabi-gcc",
    binutils_prefix: "arm-none-eabi-",
    cpu_flags: &[
        "-mcpu=cortex-m7",
        "-mthumb",
        "-mfpu=fpv5-d16",
        "-mfloat-abi=hard",
    ],
    flash_bytes: Some(2 * MIB),
    // 512 KiB AXI SRAM for data, plus the stack reserved in the 128 KiB DTCM.
    ram_bytes: Some(512 * KIB + MCU_STACK),
    stack_bytes: MCU_STACK,
    emulator: Emulator::System {
        binary: "qemu-system-arm",
        machine: "mps2-an500",
    },
    qemu_build: Build {
        defs: "-DTZ_QEMU -DTZ_QEMU_MPS2_AN500 -DTZ_ENABLE_CACHES",
        link: Link::BareMetal {
            platform: PLATFORM_SEMIHOST,
            script: AN500_LD,
        },
    },
    board_build: Build {
        defs: "-DTZ_BOARD_STM32H743ZI -DTZ_CLOCK_SETUP -DTZ_ENABLE_CACHES",
        link: Link::BareMetal {
            platform: PLATFORM_UART,
            script: H743_LD,
        },
    },
    readme: include_str!("boards/README_STM32H7.md"),
    description: "Cortex-M7 at 480 MHz (the startup sets VOS0, PLL1 and 4 flash wait states), \
                  2 MiB flash (code + weights), 512 KiB AXI SRAM for arena/KV cache/buffers, \
                  32 KiB stack in DTCM, output on USART3 (ST-LINK virtual COM port, 115200 8N1)",
};

const STM32N6: BoardProfile = BoardProfile {
    board: Board::Stm32N6,
    config_name: "STM32N6570-DK",
    name: "STM32N6570-DK",
    chip: "STM32N657X0",
    cpu: "Cortex-M55",
    cores: 1,
    clock_hz: 800_000_000,
    cc: "arm-none-eabi-gcc",
    binutils_prefix: "arm-none-eabi-",
    // gcc 12 picks FPv5-D16 + MVE (Helium, `__ARM_FEATURE_MVE`) from `-mcpu=cortex-m55`.
    cpu_flags: &["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
    // The application area of the 128 MiB octo-SPI NOR after the FSBL's first MiB and the
    // 1 KiB signing header (see the linker script).
    flash_bytes: Some(128 * MIB - MIB - KIB),
    // FLEXRAM + AXISRAM1 + AXISRAM2: the 2 MiB that are on at reset, stack included.
    ram_bytes: Some(2 * MIB),
    stack_bytes: MCU_STACK,
    emulator: Emulator::System {
        binary: "qemu-system-arm",
        machine: "mps3-an547",
    },
    qemu_build: Build {
        defs: "-DTZ_QEMU -DTZ_QEMU_MPS3_AN547 -DTZ_ENABLE_CACHES",
        link: Link::BareMetal {
            platform: PLATFORM_SEMIHOST,
            script: AN547_LD,
        },
    },
    board_build: Build {
        defs: "-DTZ_BOARD_STM32N657 -DTZ_ENABLE_CACHES",
        link: Link::BareMetal {
            platform: PLATFORM_UART,
            script: N657_LD,
        },
    },
    readme: include_str!("boards/README_STM32N6.md"),
    description: "Cortex-M55 (Helium) at 800 MHz as the first-stage bootloader sets it up (the \
                  application keeps its clocks), code and weights executed in place from the \
                  external octo-SPI flash at 0x70100400, 2 MiB AXISRAM for data and stack, \
                  output on USART1 (ST-LINK virtual COM port); the Neural-ART NPU is not used",
};

const STM32MP157: BoardProfile = BoardProfile {
    board: Board::Stm32Mp157,
    config_name: "STM32MP157F-DK2",
    name: "STM32MP157F-DK2",
    chip: "STM32MP157F",
    cpu: "Cortex-A7",
    cores: 2,
    clock_hz: 800_000_000,
    cc: "arm-linux-gnueabihf-gcc",
    binutils_prefix: "arm-linux-gnueabihf-",
    cpu_flags: &["-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"],
    flash_bytes: None,
    ram_bytes: Some(512 * MIB),
    stack_bytes: 8 * MIB,
    emulator: Emulator::User {
        binary: "qemu-arm",
        cpu: "cortex-a7",
    },
    qemu_build: MPU_QEMU_BUILD,
    board_build: MPU_BOARD_BUILD,
    readme: README_MPU,
    description: "2x Cortex-A7 at 800 MHz running OpenSTLinux, 512 MiB DDR; a static armhf \
                  executable printing to stdout (one thread)",
};

const STM32MP257: BoardProfile = BoardProfile {
    board: Board::Stm32Mp257,
    config_name: "STM32MP257F-EV1",
    name: "STM32MP257F-EV1",
    chip: "STM32MP257F",
    cpu: "Cortex-A35",
    cores: 2,
    clock_hz: 1_500_000_000,
    cc: "aarch64-linux-gnu-gcc",
    binutils_prefix: "aarch64-linux-gnu-",
    cpu_flags: &["-mcpu=cortex-a35"],
    flash_bytes: None,
    ram_bytes: Some(4096 * MIB),
    stack_bytes: 8 * MIB,
    emulator: Emulator::User {
        binary: "qemu-aarch64",
        cpu: "cortex-a35",
    },
    qemu_build: MPU_QEMU_BUILD,
    board_build: MPU_BOARD_BUILD,
    readme: README_MPU,
    description: "2x Cortex-A35 at 1.5 GHz running OpenSTLinux, 4 GiB DDR; a static aarch64 \
                  executable printing to stdout (one thread)",
};

/// The host build's two "builds" are the same native one (`make run-qemu` runs it too, so
/// the host goes through every target).
const NATIVE_BUILD: Build = Build {
    defs: "-DTZ_HOST",
    link: Link::Native,
};

const HOST: BoardProfile = BoardProfile {
    board: Board::Host,
    config_name: "host",
    name: "host",
    chip: "host",
    cpu: "host CPU",
    cores: 1,
    clock_hz: 0,
    cc: "cc",
    binutils_prefix: "",
    cpu_flags: &[],
    flash_bytes: None,
    ram_bytes: None,
    stack_bytes: 8 * MIB,
    emulator: Emulator::Native,
    qemu_build: NATIVE_BUILD,
    board_build: NATIVE_BUILD,
    readme: include_str!("boards/README_HOST.md"),
    description: "this machine, built with the system C compiler; no memory budget (clock_hz \
                  is 0: unknown)",
};

/// The board-specific files of the generated project, as (path from the project root,
/// contents). The application sources (`src/model.c`, `src/app.c`, ...) come from the other
/// generators; the Makefile compiles every `src/*.c` plus the platform files listed here.
pub fn project_files(board: Board) -> Vec<(&'static str, String)> {
    let p = profile(board);
    let mut files = vec![("Makefile", makefile::render(&p))];
    files.extend([PLATFORM_H, PLATFORM_HOST, INSN_COUNT].map(Source::file));
    files.push(("README.md", p.readme.to_string()));
    let bare: Vec<(Source, Source)> = p.builds().iter().filter_map(Build::bare_metal).collect();
    if !bare.is_empty() {
        files.extend(bare.iter().map(|&(platform, _)| platform.file()));
        files.extend([STARTUP_CORTEXM, CLOCKS_STM32, SECTIONS_LD].map(Source::file));
        files.extend(bare.iter().map(|&(_, script)| script.file()));
    }
    files.extend(cmake::render(&p));
    files
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
        // What project.rs writes for a bare-metal board (the platform layer and the clock
        // setup read TZ_SYSCLK_HZ from it).
        let config = format!(
            "#ifndef TZ_SYSCLK_HZ\n#define TZ_SYSCLK_HZ {}u\n#endif\n",
            profile(board).clock_hz
        );
        std::fs::write(dir.path().join("src/app_config.h"), config).expect("write app_config.h");
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

    /// Size of `symbol` in `elf` (`nm -S`), 0 when absent.
    fn symbol_size(dir: &Path, elf: &str, symbol: &str) -> u64 {
        let out = Command::new("arm-none-eabi-nm")
            .args(["-S", elf])
            .current_dir(dir)
            .output()
            .expect("nm");
        text(&out.stdout)
            .lines()
            .find(|l| l.ends_with(&format!(" {symbol}")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| u64::from_str_radix(n, 16).ok())
            .unwrap_or(0)
    }

    /// The STM32H743 board build carries the full-speed clock setup (for 480 MHz, 400 MHz
    /// and from the ST-LINK's HSE bypass, all with -Wall -Wextra -Werror); the QEMU build,
    /// whose machine has no RCC, and the STM32N657 (its FSBL sets the clocks) carry an empty
    /// one. An unsupported clock is a compile-time error naming what is allowed.
    #[test]
    fn the_full_speed_clock_setup_is_built_for_the_h743_board_only() {
        need("arm-none-eabi-gcc");
        let dir = project(Board::Stm32H7);
        for flags in [
            "",
            "EXTRA_CFLAGS=-DTZ_SYSCLK_HZ=400000000u",
            "EXTRA_CFLAGS=-DTZ_HSE_BYPASS_HZ=8000000u",
        ] {
            let args: Vec<&str> = ["board", flags]
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect();
            let out = make(dir.path(), &args);
            assert!(out.status.success(), "{flags}: {}", text(&out.stderr));
            let bytes = symbol_size(dir.path(), "build/board/app", "tz_board_clocks");
            assert!(bytes > 100, "{flags}: tz_board_clocks is {bytes} bytes");
        }
        let out = make(
            dir.path(),
            &["board", "EXTRA_CFLAGS=-DTZ_SYSCLK_HZ=500000000u"],
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr)
                .contains("TZ_SYSCLK_HZ must be a multiple of 4 MHz between 96 and 480 MHz"),
            "{}",
            text(&out.stderr)
        );
        let out = make(dir.path(), &["qemu"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(symbol_size(dir.path(), "build/qemu/app", "tz_board_clocks") <= 4);
        let dir = project(Board::Stm32N6);
        let out = make(dir.path(), &["board"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(symbol_size(dir.path(), "build/board/app", "tz_board_clocks") <= 4);
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

    const ALL: [Board; 5] = [
        Board::Stm32H7,
        Board::Stm32N6,
        Board::Stm32Mp157,
        Board::Stm32Mp257,
        Board::Host,
    ];

    #[test]
    fn profiles_agree_with_the_linker_scripts() {
        let h7 = profile(Board::Stm32H7);
        assert_eq!(h7.flash_bytes, Some(2048 * 1024));
        assert!(H743_LD.text.contains("LENGTH = 2048K") && H743_LD.text.contains("LENGTH = 512K"));
        let n6 = profile(Board::Stm32N6);
        assert_eq!(h7.ram_bytes, Some((512 + 32) * 1024));
        assert_eq!(n6.ram_bytes, Some(2048 * 1024));
        assert!(N657_LD.text.contains("LENGTH = 0x07EFFC00"));
        assert_eq!(n6.flash_bytes, Some(0x07EF_FC00));
        for board in ALL {
            let p = profile(board);
            let files = project_files(board);
            for script in p.builds().iter().filter_map(Build::linker_script) {
                assert!(
                    files.iter().any(|(f, _)| *f == script),
                    "{board:?}: {script}"
                );
            }
            assert_eq!(p.bare_metal(), p.flash_bytes.is_some());
        }
    }

    #[test]
    fn each_row_is_its_board_under_the_config_name() {
        for board in ALL {
            let p = profile(board);
            assert_eq!(p.board, board);
            assert_eq!(
                serde_json::to_value(board).expect("board name"),
                serde_json::Value::from(p.config_name)
            );
        }
    }

    /// `deployment/README.md` at the repository root points users at the board READMEs, which
    /// live next to this file: every link there must resolve.
    #[test]
    fn the_deployment_folder_links_every_board_readme() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployment");
        let index = std::fs::read_to_string(root.join("README.md")).expect("deployment/README.md");
        let links: Vec<&str> = index
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
            .collect();
        for readme in [
            "README_STM32H7.md",
            "README_STM32N6.md",
            "README_MPU.md",
            "README_HOST.md",
        ] {
            assert!(
                links
                    .iter()
                    .any(|l| l.ends_with(&format!("/boards/{readme}"))),
                "{readme} is not linked from deployment/README.md"
            );
        }
        for link in links {
            assert!(
                root.join(link).exists(),
                "deployment/README.md: {link} does not exist"
            );
        }
        for board in ALL {
            assert!(index.contains(profile(board).config_name), "{board:?}");
        }
    }
}
