/* nxia-serve - serve a function to the host by running a program, through the
 * agent's Gemini broker (docs/linux-vm.md, "Calling the host").
 *
 *   nxia-serve SERVICE METHOD PROGRAM [ARG...]
 *   nxia-serve -e SERVICE METHOD
 *   nxia-serve -s SERVICE METHOD
 *
 * For each host call of SERVICE.METHOD it runs PROGRAM with the call's one
 * argument (a string or bytes; none: empty) as standard input and answers
 * with its standard output as bytes when it exits 0, or FAILED with its exit
 * status and the start of its standard error otherwise. Calls run one at a
 * time; up to 16 wait their turn (BUSY beyond). A cancelled call's program is
 * killed. With -e it runs nothing: each call is answered with its first
 * argument (or null), at once (bench:sysgemini's null call); with -s it answers
 * the sum of its bytes argument's 64-bit words, read in place (its throughput). Prints
 * "serving SERVICE.METHOD" once the broker has taken the
 * function; exits when the broker's connection ends (status 3) or on a
 * refusal (64 + the Gemini error code). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nxia_linux.h"

#define MAX_FRAME    NXIA_LINK_MAX_IN
#define MAX_RESULT   (NXIA_LINK_MAX_OUT - NXIA_GM_HEADER - 5)
#define MAX_QUEUED   16
#define ERR_KEEP     512u

/* A waiting call: its argument's bytes copied, or (by reference) its block's REF, dereferenced when it runs. */
static struct { uint64_t id; uint32_t len; int by_ref; struct nxia_gm_value ref; uint8_t arg[MAX_FRAME]; } queue[MAX_QUEUED];
static int q_head, q_count;
static uint8_t result[MAX_RESULT + 1];
static char err[ERR_KEEP + 1];
static char **program;

static _Noreturn void fail(int status, const char *msg)
{
    fprintf(stderr, "nxia-serve: %s\n", msg);
    exit(status);
}

static struct nxia_link broker;

static void send_frame(const struct nxia_gm_frame *f)
{
    if (nxia_link_send(&broker, f) < 0)
        fail(3, broker.why);
}

static void answer_error(uint64_t id, uint16_t code, const char *msg)
{
    struct nxia_gm_frame e = {.type = NXIA_GM_ERROR, .id = id, .code = code,
                              .message = (const uint8_t *)msg, .message_len = 0};
    size_t n = strlen(msg);

    e.message_len = (uint32_t)(n > NXIA_GM_MAX_MESSAGE ? NXIA_GM_MAX_MESSAGE : n);
    send_frame(&e);
}

/* A CALL for the function: queued with its argument's bytes, or refused. */
static void take_call(const struct nxia_gm_frame *f)
{
    const struct nxia_gm_value *a = &f->args[0];

    struct nxia_gm_value checked = f->nargs ? *a : (struct nxia_gm_value){0};

    if (f->nargs > 1 || (f->nargs == 1 && a->tag != NXIA_GM_STR && a->tag != NXIA_GM_BYTES && a->tag != NXIA_GM_REF)) {
        answer_error(f->id, NXIA_GM_EBAD_ARGS, "nxia-serve passes one string or bytes argument as standard input");
        return;
    }
    if (f->nargs && nxia_link_deref(&broker, &checked) != NXIA_GM_OK) {
        answer_error(f->id, NXIA_GM_EBAD_REF, "the argument is a reference, but not to a live block of region " NXIA_LINK_REGION);
        return;
    }
    if (q_count == MAX_QUEUED) {
        answer_error(f->id, NXIA_GM_EBUSY, "16 calls are waiting for this function");
        return;
    }
    int slot = (q_head + q_count++) % MAX_QUEUED;
    queue[slot].id = f->id;
    queue[slot].len = f->nargs ? checked.len : 0;
    queue[slot].by_ref = f->nargs && a->tag == NXIA_GM_REF;
    queue[slot].ref = *a;
    if (f->nargs && !queue[slot].by_ref)
        memcpy(queue[slot].arg, a->ptr, a->len);
}

/* A frame that came while a program runs: a CANCEL of the running call (1), else handled here (0). */
static int handle(const struct nxia_gm_frame *f, uint64_t running)
{
    if (f->type == NXIA_GM_CALL) {
        take_call(f);
    } else if (f->type == NXIA_GM_CANCEL) {
        if (f->id == running)
            return 1;
        for (int i = 0; i < q_count; i++) {    /* a waiting one leaves the queue */
            int s = (q_head + i) % MAX_QUEUED;
            if (queue[s].id == f->id) {
                for (int k = i; k + 1 < q_count; k++)
                    queue[(q_head + k) % MAX_QUEUED] = queue[(q_head + k + 1) % MAX_QUEUED];
                q_count--;
                break;
            }
        }
    } else if (f->type == NXIA_GM_CLOSE) {
        fail(3, "the broker closed the session");
    }
    return 0;
}

/* Runs the program for the call at the queue's head and answers it. */
static void run_one(void)
{
    uint64_t id = queue[q_head].id;
    uint32_t arg_len = queue[q_head].len, arg_off = 0, res_len = 0, err_len = 0;
    int pin[2], pout[2], perr[2], status, cancelled = 0, too_big = 0;
    const uint8_t *arg = queue[q_head].arg;
    struct nxia_gm_value ref = queue[q_head].ref;

    if (queue[q_head].by_ref) {    /* checked again now: the host may have given up on it meanwhile */
        if (nxia_link_deref(&broker, &ref) != NXIA_GM_OK) {
            q_head = (q_head + 1) % MAX_QUEUED;
            q_count--;
            answer_error(id, NXIA_GM_EBAD_REF, "the argument's block is no longer live");
            return;
        }
        arg = ref.ptr;    /* read in place: the program's standard input is the only copy */
    }

    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
        fail(3, "pipe");
    pid_t pid = fork();
    if (pid < 0)
        fail(3, "fork");
    if (pid == 0) {
        setpgid(0, 0);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execvp(program[0], program);
        fprintf(stderr, "cannot run %s: %s", program[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    if (!arg_len) {
        close(pin[1]);
        pin[1] = -1;
    }
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd p[4] = {{.fd = broker.fd, .events = POLLIN}, {.fd = pout[0], .events = POLLIN},
                              {.fd = perr[0], .events = POLLIN}, {.fd = pin[1], .events = POLLOUT}};
        if (poll(p, 4, -1) < 0)
            continue;
        if (p[0].revents) {
            struct nxia_gm_frame f;
            int t;
            if (nxia_link_fill(&broker) < 0)
                fail(3, broker.why);
            while ((t = nxia_link_take(&broker, &f)) == 1)
                if (handle(&f, id) && !cancelled) {
                    cancelled = 1;
                    kill(-pid, SIGKILL);
                }
            if (t < 0)
                fail(3, broker.why);
        }
        if (p[3].revents && pin[1] >= 0) {
            ssize_t w = write(pin[1], arg + arg_off, arg_len - arg_off);
            if (w > 0)
                arg_off += (uint32_t)w;
            if (w < 0 || arg_off == arg_len) {    /* all written, or the program stopped reading */
                close(pin[1]);
                pin[1] = -1;
            }
        }
        if (p[1].revents && pout[0] >= 0) {
            ssize_t r = read(pout[0], result + res_len, sizeof result - res_len);
            if (r > 0)
                res_len += (uint32_t)r;
            if (res_len > MAX_RESULT && !too_big) {
                too_big = 1;
                kill(-pid, SIGKILL);
            }
            if (r <= 0 || too_big) {
                close(pout[0]);
                pout[0] = -1;
            }
        }
        if (p[2].revents && perr[0] >= 0) {
            char sink[512];
            ssize_t r = read(perr[0], err_len < ERR_KEEP ? err + err_len : sink, err_len < ERR_KEEP ? ERR_KEEP - err_len : sizeof sink);
            if (r > 0 && err_len < ERR_KEEP)
                err_len += (uint32_t)r;
            if (r <= 0) {
                close(perr[0]);
                perr[0] = -1;
            }
        }
    }
    if (pin[1] >= 0)
        close(pin[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    q_head = (q_head + 1) % MAX_QUEUED;
    q_count--;
    if (cancelled)
        return;    /* the broker answered the host already */
    if (too_big) {
        answer_error(id, NXIA_GM_EFAILED, "the program's output is over the 24 KiB a result can carry");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        struct nxia_gm_frame r = {.type = NXIA_GM_RETURN, .id = id};
        r.value.tag = NXIA_GM_BYTES;
        r.value.ptr = result;
        r.value.len = res_len;
        send_frame(&r);
    } else {
        char msg[64 + ERR_KEEP];
        err[err_len] = 0;
        for (uint32_t i = 0; i < err_len; i++)    /* the message travels as UTF-8: keep it plain ASCII */
            if ((err[i] < 0x20 && err[i] != '\n') || (unsigned char)err[i] >= 0x7f)
                err[i] = '?';
        snprintf(msg, sizeof msg, "%s %s %d: %s", program[0], WIFEXITED(status) ? "exited with" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err);
        answer_error(id, NXIA_GM_EFAILED, msg);
    }
}

int main(int argc, char **argv)
{
    struct nxia_gm_frame f;
    int rc;

    int echo = argc == 4 && !strcmp(argv[1], "-e"), sum = argc == 4 && !strcmp(argv[1], "-s");

    if (echo || sum)
        argv++;
    if (argc < 4) {
        fprintf(stderr, "usage: nxia-serve SERVICE METHOD PROGRAM [ARG...] | nxia-serve -e|-s SERVICE METHOD\n"
                        "  runs PROGRAM for each host call of SERVICE.METHOD: the call's argument on its standard input,\n"
                        "  its standard output the result (exit 0) or its standard error the failure\n"
                        "  the broker's socket: $NXIA_GEMINI_SOCKET, else " NXIA_BROKER_SOCKET "\n");
        return 2;
    }
    program = argv + 3;
    signal(SIGPIPE, SIG_IGN);
    rc = nxia_link_open(&broker, "nxia-serve");
    if (rc)
        fail(rc < 0 ? 3 : 64 + rc, broker.why);
    rc = nxia_link_export(&broker, argv[1], argv[2], &f);
    if (rc) {
        fprintf(stderr, "nxia-serve: %s.%s: %s: %.*s\n", argv[1], argv[2], rc < 0 ? "failed" : nxia_gm_code_name(rc),
                rc < 0 ? (int)strlen(broker.why) : (int)f.message_len, rc < 0 ? broker.why : (const char *)f.message);
        return rc < 0 ? 3 : 64 + (rc < 64 ? rc : 0);
    }
    printf("serving %s.%s\n", argv[1], argv[2]);
    fflush(stdout);
    while (sum) {    /* bench:sysgemini's argument throughput: every byte read where it is, their sum answered */
        rc = nxia_link_next(&broker, &f, -1);
        if (rc < 0)
            fail(3, broker.why);
        if (rc && f.type == NXIA_GM_CALL) {
            struct nxia_gm_value a = f.nargs ? f.args[0] : (struct nxia_gm_value){0};
            struct nxia_gm_frame r = {.type = NXIA_GM_RETURN, .id = f.id};
            uint64_t total = 0;
            if (nxia_link_deref(&broker, &a) != NXIA_GM_OK || (a.tag != NXIA_GM_BYTES && a.tag != NXIA_GM_REF)) {
                answer_error(f.id, NXIA_GM_EBAD_ARGS, "-s takes one bytes argument (copied, or a live block of region gemini)");
                continue;
            }
            uint32_t i = 0;
            for (; i + 8 <= a.len; i += 8) {    /* little-endian 64-bit words, a short tail zero-padded */
                uint64_t w;
                memcpy(&w, a.ptr + i, 8);
                total += w;
            }
            for (unsigned shift = 0; i < a.len; i++, shift += 8)
                total += (uint64_t)a.ptr[i] << shift;
            r.value.tag = NXIA_GM_I64;
            r.value.i64 = (int64_t)total;
            send_frame(&r);
        }
    }
    while (echo) {
        rc = nxia_link_next(&broker, &f, -1);
        if (rc < 0)
            fail(3, broker.why);
        if (rc && f.type == NXIA_GM_CALL) {
            struct nxia_gm_frame r = {.type = NXIA_GM_RETURN, .id = f.id};
            if (f.nargs)
                r.value = f.args[0];
            send_frame(&r);
        }
    }
    for (;;) {
        if (q_count) {
            run_one();
            continue;
        }
        rc = nxia_link_next(&broker, &f, -1);
        if (rc < 0)
            fail(3, broker.why);
        if (rc)
            handle(&f, 0);
    }
}
