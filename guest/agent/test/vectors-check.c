/* vectors-check - the agent's side of docs/control-protocol-vectors.txt: every
 * frame, field list, proof and refused stream in it must encode, decode and be
 * judged exactly as written. The host's side is ProtocolVectorsTest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAXB (4 + CTL_MAX_BODY + 64)

static int failures, checked;
static uint8_t secret[CTL_MAX_SECRET], host_nonce[CTL_NONCE], agent_nonce[CTL_NONCE];
static long secret_len = -1;

static void fail(int line, const char *what, const uint8_t *got, size_t n)
{
    fprintf(stderr, "vectors-check: line %d: %s; computed ", line, what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", got[i]);
    fprintf(stderr, "\n");
    failures++;
}

static void expect(int line, const char *what, const uint8_t *got, size_t n, const char *want_hex)
{
    static uint8_t want[MAXB];
    long w = ctl_unhex(want_hex, want, sizeof want);

    checked++;
    if (w != (long)n || memcmp(got, want, n))
        fail(line, what, got, n);
}

/* "%41b" -> "Ab": vector strings escape space, '%' and '|' this way. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t b;
        if (s[i] == '%' && i + 2 < n) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            if (ctl_unhex(h, &b, 1) == 1) {
                out[o++] = (char)b;
                i += 2;
                continue;
            }
        }
        out[o++] = s[i];
    }
    return o;
}

/* Builds a CONFIGURE or EXEC payload from name=value fields. */
static long build_fields(char **tok, int ntok, uint8_t *buf, size_t cap)
{
    size_t off = 0;
    static char val[8192];

    for (int i = 0; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq)
            return -1;
        size_t klen = (size_t)(eq - tok[i]);
        const char *v = eq + 1;
        size_t vn = unescape(v, strlen(v), val);
        int r;
        if (vn >= sizeof val)
            return -1;
        val[vn] = 0;    /* for fs= and deny=, read with strtoul */
        if (!strncmp(tok[i], "arg", klen) && klen == 3)
            r = ctl_tlv_put(buf, cap, &off, CTL_T_ARG, val, (uint32_t)vn);
        else if (!strncmp(tok[i], "env", klen) && klen == 3)
            r = ctl_tlv_put(buf, cap, &off, CTL_T_ENV, val, (uint32_t)vn);
        else if (!strncmp(tok[i], "cwd", klen) && klen == 3)
            r = ctl_tlv_put(buf, cap, &off, CTL_T_CWD, val, (uint32_t)vn);
        else if (!strncmp(tok[i], "hostname", klen) && klen == 8)
            r = ctl_tlv_put(buf, cap, &off, CTL_T_HOSTNAME, val, (uint32_t)vn);
        else if (!strncmp(tok[i], "mount", klen) && klen == 5) {
            for (size_t k = 0; k < vn; k++)
                if (val[k] == '|')
                    val[k] = 0;
            r = ctl_tlv_put(buf, cap, &off, CTL_T_MOUNT, val, (uint32_t)vn);
        } else if (!strncmp(tok[i], "pty", klen) && klen == 3) {
            unsigned rows, cols;
            uint8_t p[4];
            if (sscanf(v, "%ux%u", &rows, &cols) != 2)
                return -1;
            ctl_put16(p, (uint16_t)rows);
            ctl_put16(p + 2, (uint16_t)cols);
            r = ctl_tlv_put(buf, cap, &off, CTL_T_PTY, p, 4);
        } else if (!strncmp(tok[i], "fs", klen) && klen == 2) {
            /* fs=BITS:PATH */
            uint8_t p[4 + 4096];
            char *colon = memchr(val, ':', vn);
            if (!colon || vn - (size_t)(colon + 1 - (char *)val) > 4096)
                return -1;
            size_t pn = vn - (size_t)(colon + 1 - (char *)val);
            ctl_put32(p, (uint32_t)strtoul((char *)val, NULL, 10));
            memcpy(p + 4, colon + 1, pn);
            r = ctl_tlv_put(buf, cap, &off, CTL_T_FS_RULE, p, (uint32_t)(4 + pn));
        } else if (!strncmp(tok[i], "unshare", klen) && klen == 7) {
            uint8_t p[4];
            ctl_put32(p, (uint32_t)strtoul((char *)val, NULL, 10));
            r = ctl_tlv_put(buf, cap, &off, CTL_T_UNSHARE, p, 4);
        } else if (!strncmp(tok[i], "deny", klen) && klen == 4) {
            /* deny=NR,NR,... */
            uint8_t p[4 * 128];
            size_t n = 0;
            for (char *q = (char *)val, *end; *q && n < 128; q = *end ? end + 1 : end) {
                ctl_put32(p + 4 * n++, (uint32_t)strtoul(q, &end, 10));
                if (end == q)
                    return -1;
            }
            r = ctl_tlv_put(buf, cap, &off, CTL_T_DENY_SYSCALLS, p, (uint32_t)(4 * n));
        } else
            return -1;
        if (r < 0)
            return -1;
    }
    return (long)off;
}

static void check_line(int line, char **tok, int ntok)
{
    static uint8_t a[MAXB], b[MAXB];

    if (!strcmp(tok[0], "secret") && ntok == 2) {
        secret_len = ctl_unhex(tok[1], secret, sizeof secret);
    } else if (!strcmp(tok[0], "host-nonce") && ntok == 2) {
        ctl_unhex(tok[1], host_nonce, sizeof host_nonce);
    } else if (!strcmp(tok[0], "agent-nonce") && ntok == 2) {
        ctl_unhex(tok[1], agent_nonce, sizeof agent_nonce);
    } else if (!strcmp(tok[0], "proof") && ntok == 3) {
        int agent = !strcmp(tok[1], "agent");
        ctl_proof(secret, (size_t)secret_len, agent, agent ? host_nonce : agent_nonce,
                  agent ? agent_nonce : host_nonce, a);
        expect(line, "proof", a, CTL_MAC, tok[2]);
    } else if (!strcmp(tok[0], "hmac") && ntok == 4) {
        long kn = ctl_unhex(tok[1], a, sizeof a), mn = ctl_unhex(tok[2], b, sizeof b);
        uint8_t mac[CTL_MAC];
        ctl_hmac(a, (size_t)kn, b, (size_t)mn, mac);
        expect(line, "hmac", mac, CTL_MAC, tok[3]);
    } else if (!strcmp(tok[0], "frame") && ntok == 6) {
        long pn = strcmp(tok[4], "-") ? ctl_unhex(tok[4], a + CTL_HEADER, sizeof a - CTL_HEADER) : 0;
        ctl_header(a, (uint16_t)strtoul(tok[2], NULL, 0), (uint32_t)strtoul(tok[3], NULL, 0), (uint32_t)pn);
        expect(line, "frame encoding", a, CTL_HEADER + (size_t)pn, tok[5]);
        long fn = ctl_unhex(tok[5], b, sizeof b);
        checked++;
        if (ctl_scan(b, (size_t)fn, 1) != fn || ctl_get16(b + 4) != strtoul(tok[2], NULL, 0) ||
            ctl_get32(b + 8) != strtoul(tok[3], NULL, 0) || memcmp(a, b, (size_t)fn))
            fail(line, "frame decoding", b, (size_t)fn);
    } else if ((!strcmp(tok[0], "exec") || !strcmp(tok[0], "configure")) && ntok >= 4) {
        long pn = build_fields(tok + 4, ntok - 4, a + CTL_HEADER, sizeof a - CTL_HEADER);
        if (pn < 0) {
            fail(line, "bad field", a, 0);
            return;
        }
        ctl_header(a, tok[0][0] == 'e' ? CTL_EXEC : CTL_CONFIGURE, (uint32_t)strtoul(tok[2], NULL, 0), (uint32_t)pn);
        expect(line, "field encoding", a, CTL_HEADER + (size_t)pn, tok[3]);
        /* decoding: walk the fields back out of the written frame */
        long fn = ctl_unhex(tok[3], b, sizeof b);
        struct ctl_tlv t = {.p = b + CTL_HEADER, .end = b + fn};
        int n = 0, r;
        while ((r = ctl_tlv_next(&t)) > 0)
            n++;
        checked++;
        if (r < 0 || n != ntok - 4)
            fail(line, "field decoding", b, (size_t)fn);
    } else if (!strcmp(tok[0], "reject") && ntok == 4) {
        long n = ctl_unhex(tok[2], a, sizeof a);
        checked++;
        if (n < 0 || ctl_scan(a, (size_t)n, 1) != -strtol(tok[3], NULL, 0))
            fail(line, "refusal", a, (size_t)(n < 0 ? 0 : n));
    } else {
        fprintf(stderr, "vectors-check: line %d: cannot read '%s'\n", line, tok[0]);
        failures++;
    }
}

int main(int argc, char **argv)
{
    static char buf[2 * MAXB + 4096];
    int line = 0;
    FILE *f;

    if (argc != 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: vectors-check FILE\n");
        return 2;
    }
    while (fgets(buf, sizeof buf, f)) {
        char *tok[64], *save = NULL;
        int ntok = 0;
        line++;
        for (char *t = strtok_r(buf, " \t\n", &save); t && ntok < 64; t = strtok_r(NULL, " \t\n", &save))
            tok[ntok++] = t;
        if (ntok && tok[0][0] != '#')
            check_line(line, tok, ntok);
    }
    fclose(f);
    if (failures || !checked) {
        fprintf(stderr, "vectors-check: %d of %d checks failed\n", failures, checked);
        return 1;
    }
    printf("vectors-check: %d checks passed\n", checked);
    return 0;
}
