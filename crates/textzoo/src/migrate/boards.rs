//! The zoo's boards on textzoo's board profiles: a board of a family textzoo builds for maps to
//! that family's profile with a note of what differs; any other board is refused with the list.

use crate::config::Board;

/// Profiles a zoo board can map to, with the name the configuration uses.
const PROFILES: [(Board, &str); 5] = [
    (Board::Stm32H7, "STM32H7"),
    (Board::Stm32N6, "STM32N6570-DK"),
    (Board::Stm32Mp157, "STM32MP157F-DK2"),
    (Board::Stm32Mp257, "STM32MP257F-EV1"),
    (Board::Host, "host"),
];

/// The profile for a zoo `board` (with the zoo's `serie`, when given, as a fallback), the
/// name to write, and a note when the profile is not exactly that board.
pub fn map(board: &str, serie: Option<&str>) -> Result<(&'static str, Option<String>), String> {
    let upper = board.to_ascii_uppercase();
    if let Some((_, name)) = PROFILES.iter().find(|(_, n)| n.eq_ignore_ascii_case(board)) {
        return Ok((name, None));
    }
    let family =
        family_of(&upper).or_else(|| serie.and_then(|s| family_of(&s.to_ascii_uppercase())));
    let Some(profile) = family else {
        return Err(format!(
            "board `{board}`{} has no textzoo profile; textzoo builds for {} (STM32H7 is a \
             NUCLEO-H743ZI2-class Cortex-M7, STM32N6570-DK a Cortex-M55 with Helium, the MP boards \
             run Linux). Set deployment.hardware_setup.board to one of them",
            serie.map(|s| format!(" (serie {s})")).unwrap_or_default(),
            PROFILES.map(|(_, n)| n).join(", ")
        ));
    };
    let note = match profile {
        Board::Stm32H7 => format!(
            "{board} builds with textzoo's STM32H7 profile (NUCLEO-H743ZI2: Cortex-M7 at 480 MHz, \
             2 MiB flash, 512 KiB AXI SRAM); the same code runs on your board's Cortex-M7, but \
             check the startup, clock and UART pins in src/boards before flashing"
        ),
        Board::Stm32N6 => format!(
            "{board} builds with textzoo's STM32N6570-DK profile (Cortex-M55 with Helium); check \
             the memory map and UART pins in src/boards before flashing"
        ),
        Board::Stm32Mp157 => format!(
            "{board} builds with textzoo's STM32MP157F-DK2 profile (Cortex-A7, Linux): the same \
             binary runs on any Cortex-A7 STM32MP1"
        ),
        Board::Stm32Mp257 => format!(
            "{board} builds with textzoo's STM32MP257F-EV1 profile (Cortex-A35, Linux): the same \
             binary runs on any STM32MP2"
        ),
        Board::Host => unreachable!("no zoo family maps to the host"),
    };
    let name = PROFILES
        .iter()
        .find(|(b, _)| *b == profile)
        .map_or("STM32H7", |(_, n)| n);
    Ok((name, Some(note)))
}

/// The family a board or serie name belongs to, among those textzoo has a profile for.
fn family_of(name: &str) -> Option<Board> {
    // Discovery kits and Nucleo boards spell the part differently: STM32H747I-DISCO,
    // NUCLEO-H743ZI2, STM32H7B3I-DK; STM32N6570-DK, NUCLEO-N657X0-Q; STM32MP157F-DK2 …
    let part = name
        .trim_start_matches("NUCLEO-")
        .trim_start_matches("STM32")
        .trim_start_matches("B-");
    if part.starts_with("MP1") {
        Some(Board::Stm32Mp157)
    } else if part.starts_with("MP2") {
        Some(Board::Stm32Mp257)
    } else if part.starts_with("H7") {
        Some(Board::Stm32H7)
    } else if part.starts_with("N6") {
        Some(Board::Stm32N6)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_boards_map_to_the_nearest_profile_or_are_refused() {
        assert_eq!(map("STM32H7", None).unwrap(), ("STM32H7", None));
        assert_eq!(map("stm32n6570-dk", None).unwrap().0, "STM32N6570-DK");
        for (board, profile) in [
            ("STM32H747I-DISCO", "STM32H7"),
            ("NUCLEO-H743ZI2", "STM32H7"),
            ("STM32H7B3I-DK", "STM32H7"),
            ("NUCLEO-N657X0-Q", "STM32N6570-DK"),
            ("STM32MP135F-DK", "STM32MP157F-DK2"),
            ("STM32MP257F-DK", "STM32MP257F-EV1"),
        ] {
            let (name, note) = map(board, None).unwrap();
            assert_eq!(name, profile, "{board}");
            assert!(note.unwrap().contains(board), "{board}");
        }
        // An unknown board name, placed by its serie.
        assert_eq!(
            map("MY-CUSTOM-BOARD", Some("STM32H7")).unwrap().0,
            "STM32H7"
        );
        for (board, serie) in [("B-U585I-IOT02A", Some("STM32U5")), ("NUCLEO-F401RE", None)] {
            let err = map(board, serie).unwrap_err();
            assert!(
                err.contains(board) && err.contains("STM32MP257F-EV1"),
                "{err}"
            );
        }
    }
}
