/*
 * crt0.S - guest entry (docs/guest-abi.md, "Entry state").
 *
 * In:  RDI = boot block (0x1000), RSP = stack_top, RFLAGS = 0x2 (DF clear).
 * If boot->flags bit 0 (NXIA_BOOT_PVM) is set, write boot->pvm_msr_value to
 * MSR boot->pvm_msr first of all: on PVM this switches the vCPU from
 * emulation to native execution, so it comes before any other work.
 */
    .section .text.start, "ax"
    .globl  _start
    .type   _start, @function
_start:
    testw   $1, 6(%rdi)             /* boot->flags & NXIA_BOOT_PVM */
    jz      1f
    movl    8(%rdi), %ecx           /* boot->pvm_msr */
    movl    16(%rdi), %eax          /* boot->pvm_msr_value, low */
    movl    20(%rdi), %edx          /* boot->pvm_msr_value, high */
    wrmsr
1:
    movq    %rdi, %rbx              /* keep the boot block (callee-saved) */

    /* zero .bss (the loader zeroes p_memsz > p_filesz too; this is cheap) */
    leaq    __bss_start(%rip), %rdi
    leaq    __bss_end(%rip), %rcx
    subq    %rdi, %rcx
    xorl    %eax, %eax
    cld
    rep stosb

    movq    %rbx, nxia_boot_ptr(%rip)
    andq    $-16, %rsp
    xorl    %ebp, %ebp
    movq    %rbx, %rdi
    call    main
    movl    %eax, %edi
    call    nxia_exit
2:  hlt
    jmp     2b
    .size   _start, . - _start

    .section .note.GNU-stack, "", @progbits
