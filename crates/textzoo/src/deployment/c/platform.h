/* platform.h: the few services the textzoo application needs from its platform.
 *
 * One implementation is linked per build target (see the Makefile):
 *   platform/platform_host.c      host and Linux MPU boards: stdout, exit(), clock_gettime
 *   platform/platform_semihost.c  QEMU stand-ins (mps2-an500, mps3-an547): Arm semihosting
 *   platform/platform_uart.c      real MCU boards (STM32H743ZI, STM32N657): polled UART
 * Bare-metal targets also link boards/startup_cortexm.c and a board linker script.
 */
#ifndef TZ_PLATFORM_H
#define TZ_PLATFORM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bare-metal boards (boards/clocks_stm32.c): the clock tree at TZ_SYSCLK_HZ when built with
 * -DTZ_CLOCK_SETUP (STM32H743 board build), otherwise nothing. Called by the startup code
 * before .data and .bss are initialised; a CubeMX project does not call it. */
void tz_board_clocks(void);

/* Bring up the output channel (UART clocks and pins on boards; nothing elsewhere). */
void tz_platform_init(void);

/* Write n bytes (any bytes, NUL included) to the console: stdout on host and Linux,
 * the semihosting console under QEMU, the ST-LINK virtual COM port UART on boards. */
void tz_platform_write(const char *s, int n);

/* End the program with `code`. Host/Linux: exit(code). QEMU: SYS_EXIT_EXTENDED, so the
 * emulator's exit status is `code`. Boards: wait for the UART to drain, then sleep forever. */
void tz_platform_exit(int code);

/* Monotonic time stamp: nanoseconds on host/Linux, CPU cycles (DWT CYCCNT, widened to 64 bit)
 * on real MCU boards, 0 under QEMU (semihosting clocks are host time and would make runs
 * non-deterministic; count instructions with tools/insn_count.c instead). */
uint64_t tz_platform_ticks(void);

/* Benchmark hook: does nothing, but is never inlined and stays an external symbol, so the
 * QEMU instruction counter (tools/insn_count.c, `make count-qemu`) can record the running
 * instruction count each time it is entered. Call it between phases (e.g. after prefill
 * and after each generated token). */
void tz_platform_mark(void);

#ifdef __cplusplus
}
#endif

#endif /* TZ_PLATFORM_H */
