/* Platform for the real MCU boards: a minimal polled UART driver (register level, no HAL),
 * written against the reference manuals but not run here (no hardware attached).
 *
 *   -DTZ_BOARD_STM32H743ZI  NUCLEO-H743ZI2: USART3 on PD8 (TX) / PD9 (RX), AF7, which the
 *                           on-board ST-LINK exposes as its virtual COM port.
 *   -DTZ_BOARD_STM32N657    STM32N6570-DK: USART1 on PE5 (TX) / PE6 (RX), AF7, ST-LINK VCP.
 *
 * The baud-rate divisor comes from the UART's kernel clock, TZ_UART_CLOCK_HZ. STM32H743 with
 * textzoo's startup (-DTZ_CLOCK_SETUP, boards/clocks_stm32.c): USART3 runs from rcc_pclk1 =
 * TZ_SYSCLK_HZ / 4 (HPRE /2, D2PPRE1 /2; 120 MHz at 480 MHz). Without it (a CubeMX project
 * calling MX_TEXTZOO_Init after its own SystemClock_Config, or the STM32N657, whose FSBL sets
 * the clocks) the default is 64 MHz, the HSI the chips start on: if your clock setup feeds
 * the UART from something else, rebuild with -DTZ_UART_CLOCK_HZ=<hz>. */
#include "app_config.h"
#include "platform.h"

#ifndef TZ_UART_BAUD
#define TZ_UART_BAUD 115200u
#endif
#ifndef TZ_UART_CLOCK_HZ
#if defined(TZ_CLOCK_SETUP) && defined(TZ_BOARD_STM32H743ZI)
#define TZ_UART_CLOCK_HZ ((TZ_SYSCLK_HZ) / 4u)
#else
#define TZ_UART_CLOCK_HZ 64000000u
#endif
#endif

#define TZ_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#if defined(TZ_BOARD_STM32H743ZI)
/* RM0433: RCC at 0x58024400, GPIOD at 0x58020C00, USART3 at 0x40004800. */
#define TZ_GPIO_BASE 0x58020C00u
#define TZ_UART_BASE 0x40004800u
#define TZ_TX_PIN 8u
#define TZ_RX_PIN 9u
#define TZ_PIN_AF 7u
static void tz_uart_clocks_on(void)
{
    TZ_REG(0x58024400u + 0xE0u) |= 1u << 3;  /* RCC_AHB4ENR.GPIODEN */
    TZ_REG(0x58024400u + 0xE8u) |= 1u << 18; /* RCC_APB1LENR.USART3EN */
    (void)TZ_REG(0x58024400u + 0xE8u);       /* read back: the clock is on before use */
}
#elif defined(TZ_BOARD_STM32N657)
/* RM0486 (secure aliases; the application runs secure after the FSBL): RCC at 0x56028000 with
 * set-only enable registers (AHB4ENSR at +0xA5C, APB2ENSR at +0xA6C), GPIOE at 0x56021000,
 * USART1 at 0x52001000. */
#define TZ_GPIO_BASE 0x56021000u
#define TZ_UART_BASE 0x52001000u
#define TZ_TX_PIN 5u
#define TZ_RX_PIN 6u
#define TZ_PIN_AF 7u
static void tz_uart_clocks_on(void)
{
    TZ_REG(0x56028000u + 0xA5Cu) = 1u << 4; /* RCC_AHB4ENSR.GPIOEENS */
    TZ_REG(0x56028000u + 0xA6Cu) = 1u << 4; /* RCC_APB2ENSR.USART1ENS */
    (void)TZ_REG(0x56028000u + 0x26Cu);     /* read back RCC_APB2ENR */
}
#else
#error "platform_uart.c: define TZ_BOARD_STM32H743ZI or TZ_BOARD_STM32N657"
#endif

/* GPIO and USART (v2, with FIFO) register offsets shared by both families. */
#define GPIO_MODER 0x00u
#define GPIO_OSPEEDR 0x08u
#define GPIO_AFRL 0x20u
#define UART_CR1 0x00u
#define UART_BRR 0x0Cu
#define UART_ISR 0x1Cu
#define UART_TDR 0x28u
#define UART_ISR_TXE (1u << 7)
#define UART_ISR_TC (1u << 6)

/* Cortex-M debug block: DWT cycle counter for tz_platform_ticks. */
#define DEMCR 0xE000EDFCu
#define DWT_CTRL 0xE0001000u
#define DWT_CYCCNT 0xE0001004u
#define DWT_LAR 0xE0001FB0u

static void tz_gpio_af(uint32_t pin)
{
    uint32_t afr = TZ_GPIO_BASE + GPIO_AFRL + (pin / 8u) * 4u;
    uint32_t shift = (pin % 8u) * 4u;
    TZ_REG(afr) = (TZ_REG(afr) & ~(0xFu << shift)) | (TZ_PIN_AF << shift);
    TZ_REG(TZ_GPIO_BASE + GPIO_OSPEEDR) |= 2u << (pin * 2u);
    TZ_REG(TZ_GPIO_BASE + GPIO_MODER) =
        (TZ_REG(TZ_GPIO_BASE + GPIO_MODER) & ~(3u << (pin * 2u))) | (2u << (pin * 2u));
}

void tz_platform_init(void)
{
    tz_uart_clocks_on();
    tz_gpio_af(TZ_TX_PIN);
    tz_gpio_af(TZ_RX_PIN);
    TZ_REG(TZ_UART_BASE + UART_CR1) = 0; /* disabled while configuring */
    TZ_REG(TZ_UART_BASE + UART_BRR) = (TZ_UART_CLOCK_HZ + TZ_UART_BAUD / 2u) / TZ_UART_BAUD;
    TZ_REG(TZ_UART_BASE + UART_CR1) = (1u << 3) | (1u << 2) | 1u; /* TE | RE | UE, 8N1 */

    TZ_REG(DEMCR) |= 1u << 24; /* TRCENA */
    TZ_REG(DWT_LAR) = 0xC5ACCE55u; /* Cortex-M7 needs the lock access key; ignored elsewhere */
    TZ_REG(DWT_CYCCNT) = 0;
    TZ_REG(DWT_CTRL) |= 1u; /* CYCCNTENA */
}

/* Bytes go out unchanged ("\n" is not expanded): set the terminal to add CR on LF. */
void tz_platform_write(const char *s, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        while ((TZ_REG(TZ_UART_BASE + UART_ISR) & UART_ISR_TXE) == 0u) {
        }
        TZ_REG(TZ_UART_BASE + UART_TDR) = (uint32_t)(unsigned char)s[i];
    }
}

void tz_platform_exit(int code)
{
    (void)code;
    while ((TZ_REG(TZ_UART_BASE + UART_ISR) & UART_ISR_TC) == 0u) {
    }
    for (;;) {
    }
}

/* CYCCNT is 32 bit (about 9 s at 480 MHz); widen it, assuming calls at least that often. */
uint64_t tz_platform_ticks(void)
{
    static uint32_t last;
    static uint64_t high;
    uint32_t now = TZ_REG(DWT_CYCCNT);
    if (now < last) {
        high += (uint64_t)1u << 32;
    }
    last = now;
    return high | now;
}

__attribute__((noinline, used)) void tz_platform_mark(void)
{
    __asm__ __volatile__("" ::: "memory");
}
