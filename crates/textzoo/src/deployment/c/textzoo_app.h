/* textzoo_app.h: the example application's entry points.
 *
 * Standalone firmware and host builds: app.c's main() calls tz_platform_init(), then
 * tz_app_run(), then tz_platform_exit().
 *
 * STM32CubeMX / STM32CubeIDE projects (see INTEGRATION.md): the project's main() keeps
 * HAL_Init() and its own SystemClock_Config() (textzoo's startup and clock setup are not
 * used), then calls
 *     MX_TEXTZOO_Init();      textzoo's UART (ST-LINK virtual COM port) and the DWT counter
 *     MX_TEXTZOO_Process();   one generation: the prompt, the text, the timing line
 * e.g. in the USER CODE BEGIN 2 section, before the main loop. */
#ifndef TEXTZOO_APP_H
#define TEXTZOO_APP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Brings up textzoo's output channel (tz_platform_init). */
void MX_TEXTZOO_Init(void);

/* Generates once with app_config.h's settings and prints the text (and, on a board, the
 * timing line). Returns when done; a fatal error (a prompt too long for the buffers) prints
 * its message and stops in tz_platform_exit. */
void MX_TEXTZOO_Process(void);

/* The generation itself; argc/argv are read on the host only (TZ_HOST). Returns 0. */
int tz_app_run(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* TEXTZOO_APP_H */
