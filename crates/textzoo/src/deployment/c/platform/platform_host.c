/* Host and Linux MPU platform (STM32MP157F-DK2, STM32MP257F-EV1 and qemu-arm/qemu-aarch64):
 * plain stdio, exit() and the POSIX monotonic clock. */
#if !defined(_POSIX_C_SOURCE) || (_POSIX_C_SOURCE < 199309L)
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L
#endif

#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__GNUC__)
#define TZ_NOINLINE __attribute__((noinline, used))
#define TZ_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define TZ_NOINLINE
#define TZ_BARRIER() ((void)0)
#endif

void tz_platform_init(void) {}

void tz_platform_write(const char *s, int n)
{
    if (n > 0) {
        (void)fwrite(s, 1, (size_t)n, stdout);
    }
}

void tz_platform_exit(int code)
{
    (void)fflush(stdout);
    exit(code);
}

uint64_t tz_platform_ticks(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

TZ_NOINLINE void tz_platform_mark(void)
{
    TZ_BARRIER();
}
