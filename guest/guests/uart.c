/*
 * uart - drives a 16550 UART at 0x3f8 by polling (VM profile device "uart"):
 * writes a greeting through THR, then reads one line the host sent through
 * RBR and answers it. Exits 0, or 2 if no line arrived.
 */
#include "nxia.h"

#define COM1 0x3f8
#define LSR_DR 0x01
#define LSR_THRE 0x20

static void uart_putc(char c)
{
    while (!(nxia_inb(COM1 + 5) & LSR_THRE))
        ;
    nxia_outb(COM1, (uint8_t)c);
}

static void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

int main(const struct nxia_boot *boot)
{
    char line[64];
    unsigned n = 0;
    unsigned long polls = 0;

    (void)boot;
    nxia_outb(COM1 + 3, 0x83);      /* DLAB: 115200 baud */
    nxia_outb(COM1 + 0, 0x01);
    nxia_outb(COM1 + 1, 0x00);
    nxia_outb(COM1 + 3, 0x03);      /* 8N1 */
    nxia_outb(COM1 + 2, 0x01);      /* FIFO on; not cleared: the host may have typed already */
    uart_puts("uart: hello over the 16550\n");
    while (n < sizeof(line) - 1) {
        if (!(nxia_inb(COM1 + 5) & LSR_DR)) {
            if (++polls > 100000)
                break;
            continue;
        }
        char c = (char)nxia_inb(COM1);
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = 0;
    if (n == 0) {
        uart_puts("uart: nothing came in\n");
        return 2;
    }
    uart_puts("uart: got '");
    uart_puts(line);
    uart_puts("'\n");
    return 0;
}
