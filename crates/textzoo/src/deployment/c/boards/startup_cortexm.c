/* Startup for the bare-metal Cortex-M targets (STM32H743ZI, STM32N657 and their QEMU stand-ins
 * mps2-an500 / mps3-an547). Own startup instead of newlib's crt0 because rdimon's crt0 locks up
 * on mps2-an500 (its heap query returns an unmapped stack) and the boards need none of it.
 *
 * Reset_Handler: enable the FPU (before any floating-point or MVE instruction), point VTOR at
 * this vector table, set the v8-M stack limit, bring the clocks to full speed
 * (tz_board_clocks, boards/clocks_stm32.c: STM32H743 board builds only, -DTZ_CLOCK_SETUP),
 * copy .data from its load address, zero .bss, enable the caches (-DTZ_ENABLE_CACHES: the
 * boards and the QEMU stand-ins alike, so the emulated run executes the same path), call
 * main, and hand its return value to tz_platform_exit. Faults end the program with exit code 250 + fault number
 * (semihosting under QEMU; a halt loop on the boards). The linker script provides the symbols. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "platform.h"

extern uint32_t __stack_top__;
extern uint32_t __stack_bottom__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __data_load__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;

int main(int argc, char **argv);
void Reset_Handler(void);

#define TZ_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define TZ_SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define TZ_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define TZ_SCB_CCSIDR (*(volatile uint32_t *)0xE000ED80u)
#define TZ_SCB_CSSELR (*(volatile uint32_t *)0xE000ED84u)
#define TZ_SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)
#define TZ_SCB_DCISW (*(volatile uint32_t *)0xE000EF60u)

static void tz_sync(void)
{
    __asm__ __volatile__("dsb 0xf\n\tisb 0xf" ::: "memory");
}

static void tz_fault(int n)
{
    tz_platform_exit(250 + n);
}

static void NMI_Handler(void) { tz_fault(0); }
static void HardFault_Handler(void) { tz_fault(1); }
static void MemManage_Handler(void) { tz_fault(2); }
static void BusFault_Handler(void) { tz_fault(3); }
static void UsageFault_Handler(void) { tz_fault(4); }
static void Other_Handler(void) { tz_fault(5); }

typedef void (*tz_handler)(void);

/* Initial stack pointer, then the 15 system exceptions. No device interrupts are enabled, so
 * no IRQ entries are needed; VTOR alignment comes from the linker script. */
struct tz_vector_table {
    void *initial_sp;
    tz_handler handlers[15];
};

__attribute__((section(".vectors"), used)) const struct tz_vector_table tz_vectors = {
    &__stack_top__,
    {
        Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
        UsageFault_Handler, Other_Handler /* SecureFault on v8-M */, 0, 0, 0,
        Other_Handler /* SVCall */, Other_Handler /* DebugMonitor */, 0,
        Other_Handler /* PendSV */, Other_Handler /* SysTick */
    }
};

#if defined(TZ_ENABLE_CACHES)
/* CMSIS SCB_EnableICache / SCB_EnableDCache equivalents (ARMv7-M / ARMv8.1-M). */
static void tz_enable_caches(void)
{
    uint32_t ccsidr;
    uint32_t sets;
    uint32_t ways;

    tz_sync();
    TZ_SCB_ICIALLU = 0u;
    tz_sync();
    TZ_SCB_CCR |= 1u << 17; /* IC */
    tz_sync();

    TZ_SCB_CSSELR = 0u; /* level 1 data cache */
    tz_sync();
    ccsidr = TZ_SCB_CCSIDR;
    sets = (ccsidr >> 13) & 0x7FFFu;
    do {
        ways = (ccsidr >> 3) & 0x3FFu;
        do {
            TZ_SCB_DCISW = ((sets & 0x1FFu) << 5) | ((ways & 3u) << 30);
        } while (ways-- != 0u);
    } while (sets-- != 0u);
    tz_sync();
    TZ_SCB_CCR |= 1u << 16; /* DC */
    tz_sync();
}
#endif

/* Kept out of line so that nothing here can be scheduled before the FPU is on: with
 * -mfloat-abi=hard (and MVE on Cortex-M55) gcc may use FP/vector registers for copies. */
__attribute__((noinline)) static void tz_start_c(void)
{
    static char *tz_argv[1] = { NULL };
    size_t data_bytes = (size_t)((char *)&__data_end__ - (char *)&__data_start__);
    size_t bss_bytes = (size_t)((char *)&__bss_end__ - (char *)&__bss_start__);

    TZ_SCB_VTOR = (uint32_t)(uintptr_t)&tz_vectors;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Stack overflow faults instead of silently overwriting .bss. */
    __asm__ __volatile__("msr msplim, %0" : : "r"(&__stack_bottom__));
#endif
    tz_board_clocks();
    if (&__data_start__ != &__data_load__ && data_bytes != 0u) {
        memcpy(&__data_start__, &__data_load__, data_bytes);
    }
    if (bss_bytes != 0u) {
        memset(&__bss_start__, 0, bss_bytes);
    }
#if defined(TZ_ENABLE_CACHES)
    tz_enable_caches();
#endif
    tz_platform_exit(main(0, tz_argv));
}

void Reset_Handler(void)
{
    TZ_SCB_CPACR |= 0xFu << 20; /* CP10 + CP11 full access: FPU (and MVE) on */
    tz_sync();
    tz_start_c();
}
