/* fuzz-frames - the agent's frame parser under random input, built with ASan
 * and UBSan (make check). Each case is a stream of frames, some broken on
 * purpose, fed in random pieces over a socketpair to the agent's own
 * conn_readable() in one of three states (before HELLO, before AUTH with no
 * valid secret, authenticated); the agent's answers are checked against what
 * the protocol says they must be. TLV payloads and secrets get their own cases.
 * Then the committed corpus (test/frames-corpus.txt) is replayed.
 *
 *   fuzz-frames [--cases N] [--seed S] [CORPUS]
 */
#define main nxia_agent_main
int nxia_agent_main(int argc, char **argv);
#include "../agent.c"
#undef main

#include <inttypes.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

static uint64_t rng;
static int out = 2;    /* the fuzzer's own messages; fd 2 is the agent's log, silenced */
static long long kase;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static void die(const char *what, long long a, long long b)
{
    dprintf(out, "fuzz-frames: case %lld: %s (%lld, %lld)\n", kase, what, a, b);
    exit(1);
}

/* A payload length: mostly small, sometimes large, sometimes the largest. */
static uint32_t some_len(void)
{
    uint32_t r = below(100);
    return r < 70 ? below(65) : r < 90 ? below(4097) : r < 97 ? below(CTL_MAX_PAYLOAD + 1) : CTL_MAX_PAYLOAD;
}

enum { BROKEN_NONE, BROKEN_BIG, BROKEN_SMALL, BROKEN_FLAGS, BROKEN_TRUNCATED };

struct stream {
    uint8_t *b;
    size_t len, cap;
    int frames;              /* whole, valid frames before the break */
    int broken;
    uint32_t first_type, first_len;
};

static void put(struct stream *s, const void *p, size_t n)
{
    if (s->cap - s->len < n) {
        s->cap = (s->len + n) * 2;
        s->b = realloc(s->b, s->cap);
        if (!s->b)
            die("out of memory", (long long)s->cap, 0);
    }
    memcpy(s->b + s->len, p, n);
    s->len += n;
}

/* Frames of type `type` (or random types when 0), the last one broken one way or another (or not). */
static void make_stream(struct stream *s, uint16_t type, int allow_break)
{
    static uint8_t payload[CTL_MAX_PAYLOAD];
    int n = 1 + (int)below(8);

    s->len = 0;
    s->frames = 0;
    s->broken = BROKEN_NONE;
    for (int i = 0; i < n; i++) {
        uint8_t h[CTL_HEADER];
        uint32_t len = some_len();
        uint16_t t = type ? type : (uint16_t)rnd();
        int brk = allow_break && i == n - 1 && below(2) ? 1 + (int)below(4) : BROKEN_NONE;

        if (i == 0 && below(4) == 0 && !type) {    /* a HELLO, well formed or nearly */
            t = CTL_HELLO;
            len = below(2) ? 4 + CTL_NONCE : below(64);
        }
        for (uint32_t k = 0; k < len; k++)
            payload[k] = (uint8_t)rnd();
        ctl_header(h, t, (uint32_t)rnd(), len);
        if (brk == BROKEN_BIG)
            ctl_put32(h, CTL_MAX_BODY + 1 + below(2) * (uint32_t)(rnd() % 0xfffeffffu));
        else if (brk == BROKEN_SMALL)
            ctl_put32(h, below(8));
        else if (brk == BROKEN_FLAGS)
            ctl_put16(h + 6, (uint16_t)(1 + below(0xffff)));
        if (i == 0) {
            s->first_type = t;
            s->first_len = len;
        }
        if (brk == BROKEN_TRUNCATED) {
            size_t whole = CTL_HEADER + len, cut = 1 + below((uint32_t)whole - 1);
            put(s, h, cut < CTL_HEADER ? cut : CTL_HEADER);
            if (cut > CTL_HEADER)
                put(s, payload, cut - CTL_HEADER);
        } else {
            /* A broken header is refused before its body is read: send only as much
             * of it as shows the break (flags are bytes 6..7). */
            put(s, h, brk == BROKEN_FLAGS ? 8 + below(CTL_HEADER - 7) : brk ? 4 + below(CTL_HEADER - 3) : CTL_HEADER);
            if (!brk)
                put(s, payload, len);
        }
        s->broken = brk;
        if (brk)
            break;
        s->frames++;
    }
}

/* One answer from the agent; 0 at the end of the stream. */
static int answer(int fd, uint16_t *type, uint32_t *id, uint32_t *code)
{
    static uint8_t buf[4 + CTL_MAX_BODY];
    size_t have = 0;
    long r;

    while ((r = ctl_scan(buf, have, 0)) == 0) {
        ssize_t n = recv(fd, buf + have, have < CTL_HEADER ? CTL_HEADER - have : 4 + ctl_get32(buf) - have, 0);
        if (n <= 0) {
            if (have)
                die("the agent's answer ends inside a frame", (long long)have, 0);
            return 0;
        }
        have += (size_t)n;
    }
    if (r < 0)
        die("the agent sent a malformed frame", r, 0);
    *type = ctl_get16(buf + 4);
    *id = ctl_get32(buf + 8);
    *code = r >= CTL_HEADER + 4 ? ctl_get32(buf + CTL_HEADER) : 0;
    return 1;
}

/* Feeds the stream to a fresh connection in `state` in random pieces, then ends it. */
static void feed(struct conn *c, const uint8_t *b, size_t len, int state, int sv[2])
{
    size_t off = 0;

    c->fd = sv[0];
    c->state = state;
    if (state == 1)
        for (unsigned i = 0; i < CTL_NONCE; i++)
            c->agent_nonce[i] = (uint8_t)rnd();
    while (off < len && !c->dead) {
        size_t piece = len - off;
        if (below(2))
            piece = 1 + below((uint32_t)(piece < 70000 ? piece : 70000));
        ssize_t w = send(sv[1], b + off, piece, MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN)
            die("send", errno, 0);
        if (w > 0)
            off += (size_t)w;
        conn_readable(c);
        if (c->rlen > sizeof c->rbuf)
            die("rlen past rbuf", (long long)c->rlen, 0);
    }
    int pending;
    while (!c->dead && ioctl(sv[0], FIONREAD, &pending) == 0 && pending > 0)
        conn_readable(c);
    shutdown(sv[1], SHUT_WR);
    if (!c->dead)
        conn_readable(c);    /* sees the end of the stream */
    if (!c->dead)
        die("the connection outlived the end of its stream", 0, 0);
}

static void stream_case(struct stream *s)
{
    static const uint16_t fuzz_types[] = {CTL_STDIN, CTL_SIGNAL, CTL_RESIZE, 0x18, 0x7f, 0x91, 0xffff};
    int sv[2], state = (int)below(3);
    struct conn *c = &conns[0];

    /* Authenticated, quiesced (no program starts, CONFIGURE mounts nothing) and
     * without QUIESCE/RESUME/SHUTDOWN: frames the agent answers without side effects. */
    if (state == 2)
        make_stream(s, fuzz_types[below(sizeof fuzz_types / sizeof fuzz_types[0])], 1);
    else
        make_stream(s, 0, 1);
    secret_len = state == 1 ? 0 : 32;
    if (state == 1)
        state = 0;    /* state 1 of the fuzzer: HELLO to an agent without a secret */
    quiesced = 1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", errno, 0);
    feed(c, s->b, s->len, state, sv);
    close_conn(c);
    uint16_t type;
    uint32_t id, code;
    int answers = 0, last_error = 0, per_frame = ctl_get16(s->b + 4) == CTL_STDIN ? 0 : 1;
    while (answer(sv[1], &type, &id, &code)) {
        answers++;
        last_error = type == CTL_ERROR ? (int)code : 0;
        if (state == 2 && answers <= per_frame * s->frames &&
            (type != CTL_ERROR || (code != CTL_E_UNKNOWN_TYPE && code != CTL_E_PROTO && code != CTL_E_NO_SUCH_ID)))
            die("authenticated: unexpected answer to a whole frame", type, code);
    }
    close(sv[1]);
    int want_error = s->broken == BROKEN_BIG ? CTL_E_TOO_BIG : s->broken == BROKEN_TRUNCATED ? CTL_E_TRUNCATED
                   : s->broken ? CTL_E_PROTO : 0;
    if (state == 2) {
        /* One answer per whole frame (STDIN for no program gets none), then the error that ended it. */
        if (answers != per_frame * s->frames + (want_error != 0) || (want_error && last_error != want_error))
            die("authenticated: answers and the last error code", answers, last_error);
    } else if (secret_len == 0) {
        /* Whatever comes first, the answer is ERROR AUTH and the end. */
        int whole = s->frames > 0;
        if (whole ? answers != 1 || last_error != CTL_E_AUTH : last_error != want_error)
            die("no secret: a connection was not refused", answers, last_error);
    } else if (s->frames > 0) {
        int hello = s->first_type == CTL_HELLO && s->first_len == 4 + CTL_NONCE;
        if (!hello && (answers != 1 || (last_error != CTL_E_PROTO && last_error != CTL_E_VERSION)))
            die("before HELLO: something else was not refused", answers, last_error);
        if (hello && last_error == 0 && answers != 1)
            die("HELLO: not answered with HELLO_REPLY alone", answers, last_error);
    }
}

static void tlv_case(void)
{
    uint32_t n = below(2) ? below(64) : below(4096);
    uint8_t *p = malloc(n ? n : 1);    /* exactly n: ASan catches a read past it */
    size_t off = 0;

    if (!p)
        die("out of memory", n, 0);
    /* Mostly well-formed fields, with a random length now and then. */
    while (off < n) {
        uint32_t room = (uint32_t)(n - off);
        if (room < 5 || below(8) == 0) {
            for (; off < n; off++)
                p[off] = (uint8_t)rnd();
            break;
        }
        uint32_t len = below(4) ? below(room - 4) : (uint32_t)rnd();
        p[off] = (uint8_t)rnd();
        ctl_put32(p + off + 1, len);
        off += 5;
        for (uint32_t k = 0; k < len && off < n; k++)
            p[off++] = (uint8_t)rnd();
    }
    struct ctl_tlv t = {.p = p, .end = p + n};
    size_t seen = 0;
    int r;
    while ((r = ctl_tlv_next(&t)) > 0) {
        if (t.val < p + 5 || t.len > (size_t)(p + n - t.val))
            die("a field past its payload", (long long)(t.val - p), t.len);
        volatile uint8_t sink = 0;
        for (uint32_t k = 0; k < t.len; k++)
            sink ^= t.val[k];
        (void)sink;
        seen += 5 + (size_t)t.len;
    }
    if (r == 0 ? seen != n : seen >= n)
        die("fields do not account for the payload", (long long)seen, n);
    free(p);
}

static void secret_case(void)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    char s[160];
    size_t n = below(2) ? 2 * (CTL_MIN_SECRET - 2 + below(CTL_MAX_SECRET - CTL_MIN_SECRET + 5)) + below(2) : below(150);
    int ok_chars;

    for (size_t i = 0; i < n; i++)
        s[i] = below(50) ? hex[below(sizeof hex - 1)] : (char)(1 + below(255));
    s[n] = 0;
    size_t trimmed = n;
    while (trimmed && (s[trimmed - 1] == '\n' || s[trimmed - 1] == ' '))
        trimmed--;
    ok_chars = 1;    /* over what is left once trailing newlines and spaces go */
    for (size_t i = 0; i < trimmed; i++)
        ok_chars &= strchr(hex, s[i]) != NULL;
    int valid = ok_chars && trimmed % 2 == 0 && trimmed >= 2 * CTL_MIN_SECRET && trimmed <= 2 * CTL_MAX_SECRET;
    secret_len = 0;
    const char *why = load_secret_hex(s, n);
    if (valid != (why == NULL) || secret_len != (why ? 0 : trimmed / 2))
        die("secret judged wrongly", (long long)trimmed, valid);
}

/* Corpus lines: STATE HEX (state 0: before HELLO, 1: no secret, 2: authenticated); '#' comments. */
static int replay(const char *path)
{
    FILE *f = fopen(path, "r");
    static char line[2 * (4 + CTL_MAX_BODY) + 64];
    static uint8_t bytes[4 + CTL_MAX_BODY + 16];
    int count = 0;

    if (!f)
        die("cannot open the corpus", errno, 0);
    while (fgets(line, sizeof line, f)) {
        int state;
        char *hex;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        state = line[0] - '0';
        hex = strchr(line, ' ');
        long n = hex ? ctl_unhex(hex + 1, bytes, sizeof bytes) : -1;
        if (state < 0 || state > 2 || n < 0)
            die("a corpus line is not STATE HEX", count, state);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair", errno, 0);
        secret_len = state == 1 ? 0 : 32;
        quiesced = 1;
        feed(&conns[0], bytes, (size_t)n, state == 1 ? 0 : state, sv);
        close_conn(&conns[0]);
        uint16_t type;
        uint32_t id, code;
        while (answer(sv[1], &type, &id, &code))
            ;
        close(sv[1]);
        count++;
    }
    fclose(f);
    return count;
}

int main(int argc, char **argv)
{
    long long cases = 100000;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    const char *corpus = NULL;
    struct stream s = {0};

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cases") && i + 1 < argc)
            cases = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (argv[i][0] != '-')
            corpus = argv[i];
        else {
            fprintf(stderr, "usage: fuzz-frames [--cases N] [--seed S] [CORPUS]\n");
            return 2;
        }
    }
    out = dup(2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);    /* the agent's log lines ("failed to authenticate") */
    close(null);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_set_report_fd((void *)(intptr_t)out);
#endif
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;
    memset(secret, 0x5a, 32);
    rng = seed ? seed : 1;
    dprintf(out, "fuzz-frames: seed 0x%" PRIx64 "\n", seed);
    long long streams = 0, tlvs = 0, secrets = 0;
    for (kase = 0; kase < cases; kase++) {
        uint32_t k = below(10);
        if (k < 6) {
            stream_case(&s);
            streams++;
        } else if (k < 9) {
            tlv_case();
            tlvs++;
        } else {
            secret_case();
            secrets++;
        }
    }
    int replayed = corpus ? replay(corpus) : 0;
    dprintf(out, "fuzz-frames: %lld cases (%lld streams, %lld field lists, %lld secrets), %d corpus streams, 0 crashes\n",
            cases, streams, tlvs, secrets, replayed);
    free(s.b);
    return 0;
}
