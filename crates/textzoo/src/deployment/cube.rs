//! STM32Cube integration: the runtime, model, tokenizer, sampler, text handling and the
//! example app as a middleware folder in STM32Cube layout (`Middlewares/Third_Party/textzoo/
//! {Inc,Src}`), for CubeMX/CubeIDE projects, which own the clocks, the HAL and `main.c` and
//! call `MX_TEXTZOO_Init()` / `MX_TEXTZOO_Process()` (`textzoo_app.h`) after their own
//! `SystemClock_Config()`; plus `INTEGRATION.md`, what to copy and set. The files are the
//! project's own `src/` files (the same bytes), so the middleware and the standalone firmware
//! cannot drift apart; only the app loses its `main` and the UART driver its board choice.

use super::boards::BoardProfile;
use super::project::ProjectFile;

/// Where the middleware goes, from the project root (CubeMX's place for third-party code).
pub const MIDDLEWARE_DIR: &str = "Middlewares/Third_Party/textzoo";

const INTEGRATION_MD: &str = include_str!("boards/INTEGRATION.md");

/// The project's `src/` sources that make up the middleware: headers go to `Inc/`, these
/// sources to `Src/`. `app.c` becomes `textzoo_app.c` without its `main`.
const SOURCES: &[&str] = &[
    "src/textzoo_rt.c",
    "src/tz_sample.c",
    "src/tz_text.c",
    "src/model.c",
    "src/tokenizer.c",
];

/// The middleware folder and `INTEGRATION.md` for a bare-metal board's project `files`;
/// nothing for boards with an OS or the host.
pub fn middleware(files: &[ProjectFile], board: &BoardProfile) -> Vec<ProjectFile> {
    let Some((platform, _)) = board.board_build.bare_metal() else {
        return Vec::new();
    };
    // The board's own define (e.g. TZ_BOARD_STM32H743ZI), so the UART driver picks its pins
    // without a project-wide preprocessor symbol.
    let board_define = board
        .board_build
        .defs
        .split_whitespace()
        .find_map(|d| d.strip_prefix("-D").filter(|d| d.starts_with("TZ_BOARD_")))
        .unwrap_or("TZ_BOARD_UNKNOWN");
    let mut out = Vec::new();
    let dest = |sub: &str, name: &str| format!("{MIDDLEWARE_DIR}/{sub}/{name}");
    for (path, text) in files {
        let Some(name) = path.strip_prefix("src/") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        if name.ends_with(".h") {
            out.push((dest("Inc", name), text.clone()));
        } else if SOURCES.contains(&path.as_str()) {
            out.push((dest("Src", name), text.clone()));
        } else if name == "app.c" {
            out.push((
                dest("Src", "textzoo_app.c"),
                format!(
                    "/* The example app of src/app.c for a CubeMX project: its main() is left \
                     out (TZ_APP_NO_MAIN);\n * call MX_TEXTZOO_Init() and MX_TEXTZOO_Process() \
                     from yours (INTEGRATION.md). */\n#define TZ_APP_NO_MAIN 1\n{text}"
                ),
            ));
        }
    }
    if let Some((_, text)) = files.iter().find(|(p, _)| p == platform.path) {
        out.push((
            dest("Src", "platform_uart.c"),
            format!(
                "/* textzoo's polled UART driver (src/platform/platform_uart.c) for {name}. */\n\
                 #if !defined(TZ_BOARD_STM32H743ZI) && !defined(TZ_BOARD_STM32N657)\n\
                 #define {board_define} 1\n#endif\n{text}",
                name = board.name
            ),
        ));
    }
    let guide = INTEGRATION_MD
        .replace("{board}", board.name)
        .replace("{chip}", board.chip)
        .replace("{cpu}", board.cpu)
        .replace("{mhz}", &(board.clock_hz / 1_000_000).to_string());
    out.push(("INTEGRATION.md".to_string(), guide));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Board;
    use crate::deployment::boards::profile;

    fn fake_project() -> Vec<ProjectFile> {
        [
            ("src/model.c", "model"),
            ("src/model.h", "model.h"),
            ("src/app.c", "int main(void) { return 0; }"),
            ("src/app_config.h", "config"),
            ("src/platform/platform_uart.c", "uart"),
            ("src/platform/platform_host.c", "host"),
            ("src/boards/startup_cortexm.c", "startup"),
            ("Makefile", "make"),
        ]
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
    }

    #[test]
    fn the_middleware_is_the_projects_sources_in_cube_layout() {
        let files = middleware(&fake_project(), &profile(Board::Stm32H7));
        let get = |p: &str| {
            files
                .iter()
                .find(|(f, _)| f == p)
                .map(|(_, t)| t.as_str())
                .unwrap_or_else(|| panic!("{p} missing: {files:?}"))
        };
        assert_eq!(get("Middlewares/Third_Party/textzoo/Src/model.c"), "model");
        assert_eq!(
            get("Middlewares/Third_Party/textzoo/Inc/model.h"),
            "model.h"
        );
        assert_eq!(
            get("Middlewares/Third_Party/textzoo/Inc/app_config.h"),
            "config"
        );
        let app = get("Middlewares/Third_Party/textzoo/Src/textzoo_app.c");
        assert!(app.contains("#define TZ_APP_NO_MAIN 1\nint main"), "{app}");
        let uart = get("Middlewares/Third_Party/textzoo/Src/platform_uart.c");
        assert!(uart.contains("#define TZ_BOARD_STM32H743ZI 1"), "{uart}");
        assert!(get("INTEGRATION.md").contains("NUCLEO-H743ZI2"));
        // Startup, host platform and build files stay out: CubeMX brings its own.
        assert_eq!(files.len(), 6, "{files:?}");
        assert!(middleware(&fake_project(), &profile(Board::Stm32Mp157)).is_empty());
        assert!(middleware(&fake_project(), &profile(Board::Host)).is_empty());
    }
}
