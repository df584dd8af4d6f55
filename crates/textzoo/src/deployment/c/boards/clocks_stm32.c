/* Clock tree at full speed for the real boards (the standalone firmware; a CubeMX project
 * uses its own SystemClock_Config() instead and never links this file's work).
 *
 * tz_board_clocks() runs from Reset_Handler before .data/.bss are touched by the application
 * and before the caches are enabled. It is compiled for every bare-metal build but only does
 * something with -DTZ_CLOCK_SETUP (the `board` build of STM32H7 projects): QEMU's stand-ins
 * (mps2-an500, mps3-an547) do not model the STM32 RCC, PWR or flash interface, so the
 * emulated build never runs it.
 *
 * TZ_SYSCLK_HZ (app_config.h) is the CPU clock the firmware sets up and believes it runs at:
 *   480000000  STM32H743 revision V: VOS0 (overdrive), the profile's clock (default)
 *   400000000  revision Y silicon (no VOS0) or a cooler part: VOS1
 * Clock source: the 64 MHz HSI by default; -DTZ_HSE_BYPASS_HZ=8000000 uses the 8 MHz MCO the
 * NUCLEO-H743ZI2's ST-LINK drives into PH0 (HSE bypass). Either way PLL1 runs from an 8 MHz
 * reference, VCO = 2 * TZ_SYSCLK_HZ (wide range), P = 2 -> sys_ck, Q = 8, R = 2.
 * Buses: D1CPRE /1 (CPU = sys_ck), HPRE /2 (AXI/AHB = 240 MHz), every APB /2 (120 MHz), which
 * is the kernel clock of USART3 (rcc_pclk1, USART234578SEL's reset value): see
 * TZ_UART_CLOCK_HZ in platform/platform_uart.c.
 *
 * STM32N657 (STM32N6570-DK): the boot ROM and the first-stage bootloader (FSBL) that loads
 * this application own the clock tree: the FSBL programs the PLLs and the CPU clock (up to
 * 800 MHz, VOS high) before jumping here, and RM0486 requires that to happen before the
 * external flash runs at speed, i.e. before this code can execute from it. The application
 * therefore changes no clock and trusts TZ_SYSCLK_HZ to match what the FSBL set (its
 * template's SystemClock_Config). */
#include <stdint.h>

#include "platform.h"

#if defined(TZ_CLOCK_SETUP) && defined(TZ_BOARD_STM32H743ZI)

#include "app_config.h"

#define TZ_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#ifndef TZ_SYSCLK_HZ
#error "clocks_stm32.c: TZ_SYSCLK_HZ (app_config.h) is not defined"
#endif

/* ---------------------------------------------------------------------------------------
 * Register map (RM0433 rev 8, section 2.3.2 memory map; register offsets from the
 * register maps of sections 4.4 FLASH, 6.8 PWR, 8.7 RCC, 12.3 SYSCFG)
 */
#define RCC_BASE 0x58024400u
#define RCC_CR (RCC_BASE + 0x000u)
#define RCC_CFGR (RCC_BASE + 0x010u)
#define RCC_D1CFGR (RCC_BASE + 0x018u)
#define RCC_D2CFGR (RCC_BASE + 0x01Cu)
#define RCC_D3CFGR (RCC_BASE + 0x020u)
#define RCC_PLLCKSELR (RCC_BASE + 0x028u)
#define RCC_PLLCFGR (RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR (RCC_BASE + 0x030u)
#define RCC_PLL1FRACR (RCC_BASE + 0x034u)
#define RCC_APB4ENR (RCC_BASE + 0x0F4u)
#define PWR_BASE 0x58024800u
#define PWR_CSR1 (PWR_BASE + 0x04u)
#define PWR_CR3 (PWR_BASE + 0x0Cu)
#define PWR_D3CR (PWR_BASE + 0x18u)
#define SYSCFG_PWRCR (0x58000400u + 0x2Cu)
#define FLASH_ACR 0x52002000u
#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u

/* ---------------------------------------------------------------------------------------
 * The target: PLL1 from an 8 MHz reference (DIVM1 = source / 8 MHz)
 */
#if defined(TZ_HSE_BYPASS_HZ)
#define TZ_PLL_SOURCE_HZ TZ_HSE_BYPASS_HZ
#define TZ_PLLSRC 2u /* HSE */
#else
#define TZ_PLL_SOURCE_HZ 64000000u
#define TZ_PLLSRC 0u /* HSI (HSIDIV /1 at reset) */
#endif
#define TZ_PLL_REF_HZ 8000000u
#define TZ_DIVM1 (TZ_PLL_SOURCE_HZ / TZ_PLL_REF_HZ)
#define TZ_DIVN1 (2u * (TZ_SYSCLK_HZ) / TZ_PLL_REF_HZ) /* VCO = 2 * sys_ck, P = 2 */

#if (TZ_PLL_SOURCE_HZ % TZ_PLL_REF_HZ) != 0 || TZ_DIVM1 < 1 || TZ_DIVM1 > 63
#error "clocks_stm32.c: the PLL source must be a multiple of 8 MHz (HSI 64 MHz or HSE 8..504 MHz)"
#endif
#if ((TZ_SYSCLK_HZ) % 4000000u) != 0 || (TZ_SYSCLK_HZ) < 96000000u || (TZ_SYSCLK_HZ) > 480000000u
#error "clocks_stm32.c: TZ_SYSCLK_HZ must be a multiple of 4 MHz between 96 and 480 MHz"
#endif
/* RM0433 section 6.6.2 / datasheet DS12110 table 23: above 400 MHz the core needs VOS0. */
#if (TZ_SYSCLK_HZ) > 400000000u
#define TZ_VOS0 1
#endif
/* RM0433 section 4.3.8, table 17 (FLASH recommended number of wait states and programming
 * delay), for the AXI clock sys_ck / 2: VOS0 240 MHz -> 4 WS, WRHIGHFREQ 2; VOS1 up to
 * 200 MHz -> 2 WS (3 WS kept below as margin, allowed at any lower clock), WRHIGHFREQ 2;
 * lower clocks need fewer, but more wait states are always allowed. */
#if defined(TZ_VOS0)
#define TZ_FLASH_LATENCY 4u
#else
#define TZ_FLASH_LATENCY 3u
#endif
#define TZ_FLASH_WRHIGHFREQ 2u

static void tz_wait_set(uint32_t addr, uint32_t mask)
{
    while ((TZ_REG(addr) & mask) == 0u) {
    }
}

void tz_board_clocks(void)
{
    /* 1. Supply (RM0433 section 6.4.1, "Power supply configuration", and 6.8.4 PWR_CR3):
     * the NUCLEO-H743ZI2 powers the core through the LDO. The supply configuration is
     * written once after power-on (LDOEN = 1, BYPASS = 0, SCUEN kept), then ACTVOSRDY
     * (PWR_CSR1 bit 13) says the voltage is valid. */
    TZ_REG(PWR_CR3) = (TZ_REG(PWR_CR3) & ~(1u << 0)) | (1u << 1);
    tz_wait_set(PWR_CSR1, 1u << 13);

    /* 2. Voltage scaling (RM0433 section 6.6.2 "Voltage scaling", 6.8.7 PWR_D3CR): VOS1
     * (VOS = 0b11), wait VOSRDY (bit 13); for VOS0 additionally SYSCFG_PWRCR.ODEN = 1
     * (section 12.3.12; SYSCFG clock on first, RCC_APB4ENR.SYSCFGEN bit 1) and VOSRDY again. */
    TZ_REG(PWR_D3CR) = (TZ_REG(PWR_D3CR) & ~(3u << 14)) | (3u << 14);
    tz_wait_set(PWR_D3CR, 1u << 13);
#if defined(TZ_VOS0)
    TZ_REG(RCC_APB4ENR) |= 1u << 1;
    (void)TZ_REG(RCC_APB4ENR);
    TZ_REG(SYSCFG_PWRCR) |= 1u;
    tz_wait_set(PWR_D3CR, 1u << 13);
#endif

#if defined(TZ_HSE_BYPASS_HZ)
    /* 3. HSE in bypass mode from the ST-LINK MCO (RM0433 section 8.7.2 RCC_CR: HSEBYP bit 18
     * before HSEON bit 16, then HSERDY bit 17). */
    TZ_REG(RCC_CR) |= 1u << 18;
    TZ_REG(RCC_CR) |= 1u << 16;
    tz_wait_set(RCC_CR, 1u << 17);
#endif

    /* 4. PLL1 (RM0433 section 8.5.5 "PLLs", registers 8.7.11-8.7.14), configured while off:
     * RCC_PLLCKSELR DIVM1 [9:4] and PLLSRC [1:0]; RCC_PLLCFGR PLL1RGE [3:2] = 0b11 (8-16 MHz
     * input), PLL1VCOSEL bit 1 = 0 (wide VCO), PLL1FRACEN bit 0 = 0, DIVP1EN/DIVQ1EN/DIVR1EN
     * bits 16-18; RCC_PLL1DIVR N-1 [8:0], P-1 [15:9], Q-1 [22:16], R-1 [30:24]; then
     * RCC_CR.PLL1ON (bit 24) and PLL1RDY (bit 25). */
    TZ_REG(RCC_CR) &= ~(1u << 24);
    while ((TZ_REG(RCC_CR) & (1u << 25)) != 0u) {
    }
    TZ_REG(RCC_PLLCKSELR) =
        (TZ_REG(RCC_PLLCKSELR) & ~((0x3Fu << 4) | 3u)) | (TZ_DIVM1 << 4) | TZ_PLLSRC;
    TZ_REG(RCC_PLL1DIVR) = ((TZ_DIVN1 - 1u) << 0) | ((2u - 1u) << 9) | ((8u - 1u) << 16) |
                           ((2u - 1u) << 24);
    TZ_REG(RCC_PLL1FRACR) = 0u;
    TZ_REG(RCC_PLLCFGR) = (TZ_REG(RCC_PLLCFGR) & ~0xFu & ~(7u << 16)) | (3u << 2) | (7u << 16);
    TZ_REG(RCC_CR) |= 1u << 24;
    tz_wait_set(RCC_CR, 1u << 25);

    /* 5. Flash read latency and programming delay before the clock rises (RM0433 section
     * 4.3.8: "the new number of wait states must be programmed ... before increasing the
     * clock"; FLASH_ACR LATENCY [3:0], WRHIGHFREQ [5:4], read back until it took effect). */
    TZ_REG(FLASH_ACR) = (TZ_FLASH_WRHIGHFREQ << 4) | TZ_FLASH_LATENCY;
    while ((TZ_REG(FLASH_ACR) & 0x3Fu) != ((TZ_FLASH_WRHIGHFREQ << 4) | TZ_FLASH_LATENCY)) {
    }

    /* 6. Bus prescalers, set while still on the 64 MHz HSI (RM0433 section 8.7.7-8.7.9):
     * RCC_D1CFGR D1CPRE [11:8] = 0 (/1), HPRE [3:0] = 0b1000 (/2), D1PPRE [6:4] = 0b100 (/2);
     * RCC_D2CFGR D2PPRE1 [6:4], D2PPRE2 [10:8] = /2; RCC_D3CFGR D3PPRE [6:4] = /2. */
    TZ_REG(RCC_D1CFGR) = (0u << 8) | (4u << 4) | 8u;
    TZ_REG(RCC_D2CFGR) = (4u << 8) | (4u << 4);
    TZ_REG(RCC_D3CFGR) = 4u << 4;

    /* 7. Switch sys_ck to PLL1 (RCC_CFGR SW [2:0] = 3) and wait until SWS [5:3] reports it
     * (RM0433 section 8.7.6). */
    TZ_REG(RCC_CFGR) = (TZ_REG(RCC_CFGR) & ~7u) | 3u;
    while (((TZ_REG(RCC_CFGR) >> 3) & 7u) != 3u) {
    }

    /* 8. SysTick at 1 kHz from the CPU clock, counting without an interrupt (ARMv7-M ARM
     * B3.3: SYST_RVR, SYST_CVR, SYST_CSR CLKSOURCE | ENABLE, TICKINT clear), so the vector
     * table needs no handler; a HAL-style millisecond time base can read COUNTFLAG. */
    TZ_REG(SYST_RVR) = (TZ_SYSCLK_HZ) / 1000u - 1u;
    TZ_REG(SYST_CVR) = 0u;
    TZ_REG(SYST_CSR) = (1u << 2) | 1u;
}

#else

/* QEMU stand-ins, STM32N657 (clocks set by its FSBL), and builds without TZ_CLOCK_SETUP:
 * the clocks stay as they are. */
void tz_board_clocks(void)
{
}

#endif
