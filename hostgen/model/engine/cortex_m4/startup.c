/* A bare-metal start for the emulated STM32F405 (qemu netduinoplus2): vector table, reset handler,
 * semihosting stdio (newlib's rdimon), and the _init/_fini hooks newlib's exit path calls. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __bss_start__, __bss_end__, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void SysTick_Handler(void);

void Reset_Handler(void);

static void Default_Handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    SysTick_Handler,
};

void Reset_Handler(void)
{
    for (uint32_t *word = &__bss_start__; word < &__bss_end__; ++word) {
        *word = 0;
    }
    initialise_monitor_handles();
    exit(main());
}

void _init(void) {}
void _fini(void) {}
