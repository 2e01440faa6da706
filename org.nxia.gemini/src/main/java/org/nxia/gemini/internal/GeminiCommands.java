package org.nxia.gemini.internal;

import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.TokenInfo;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** Gogo commands: gemini:sessions, gemini:services, gemini:call, gemini:tokens. */
@Component(service = GeminiCommands.class, property = {"osgi.command.scope=gemini", "osgi.command.function=sessions",
        "osgi.command.function=services", "osgi.command.function=call", "osgi.command.function=tokens"})
public final class GeminiCommands {

    private final GeminiImpl gemini;

    @Activate
    public GeminiCommands(@Reference GeminiImpl gemini) {
        this.gemini = gemini;
    }

    /**
     * gemini:sessions — open sessions, with the Portal region their by-reference arguments use and,
     * for a System VM's broker session, the processes that called through it.
     */
    public String sessions() {
        List<GeminiSession> all = gemini.sessions();
        if (all.isEmpty()) {
            return "no Gemini sessions (a guest opens one with nxia_gemini_open)";
        }
        StringBuilder s = new StringBuilder(String.format("%-8s %-10s %-20s %-16s %-12s %-8s %s%n", "SESSION", "VM", "PEER", "PROFILE",
                "IN FLIGHT", "TOKENS", "REF REGION"));
        for (GeminiSession g : all) {
            s.append(String.format("%-8d %-10s %-20s %-16s %-12d %-8d %s%n", g.id(), g.vmId() == null ? "-" : g.vmId(), g.peer(),
                    g.profile(), g.outstanding(), g.tokens().stream().filter(t -> !t.revoked()).count(),
                    g.referenceRegion().orElse("-")));
            if (g instanceof Session session && !session.callers().isEmpty()) {
                s.append("         callers: ").append(String.join(", ", session.callers())).append('\n');
            }
        }
        return s.toString();
    }

    /** gemini:services — host services guests may call (if the policy allows). */
    public String services() {
        Map<String, List<String>> all = gemini.services();
        if (all.isEmpty()) {
            return "no host services (register an OSGi service with " + Gemini.SERVICE_PROPERTY + "=<name>)";
        }
        StringBuilder s = new StringBuilder();
        all.forEach((name, methods) -> {
            s.append(name).append(": ").append(String.join(", ", methods));
            if (!gemini.catastrophic(name).isEmpty()) {
                s.append("  (catastrophic: ").append(String.join(", ", gemini.catastrophic(name))).append(')');
            }
            s.append('\n');
        });
        return s.toString();
    }

    /**
     * gemini:call SESSION SERVICE METHOD [ARG...] — calls a guest function.
     * Arguments: integers become i64, true/false bool, hex:.. bytes, anything else a string.
     */
    public String call(long session, String service, String method, String... args) {
        GeminiSession s = gemini.session(session).orElseThrow(
                () -> new IllegalArgumentException("no session " + session + " (gemini:sessions lists them)"));
        Object[] values = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            values[i] = parse(args[i]);
        }
        return Wire.text(s.call(service, method, Duration.ofSeconds(10), values));
    }

    static Object parse(String a) {
        if (a.matches("-?\\d{1,18}")) {
            return Long.parseLong(a);
        }
        if (a.equals("true") || a.equals("false")) {
            return Boolean.parseBoolean(a);
        }
        if (a.startsWith("hex:")) {
            return HexFormat.of().parseHex(a.substring(4));
        }
        return a;
    }

    /** gemini:tokens — every capability token, with owner, rights, expiry and state. */
    public String tokens() {
        List<TokenInfo> all = gemini.allTokens();
        if (all.isEmpty()) {
            return "no capability tokens";
        }
        StringBuilder s = new StringBuilder(String.format("%-34s %-8s %-16s %-6s %-26s %s%n", "TOKEN", "SESSION", "SERVICE",
                "RIGHTS", "EXPIRES", "STATE"));
        Instant now = Instant.now();
        for (TokenInfo t : all) {
            CapabilityToken tok = t.token();
            s.append(String.format("%-34s %-8d %-16s 0x%-4x %-26s %s%n", tok, t.session(), t.service(), t.rights(), t.expires(),
                    t.revoked() ? "revoked" : now.isBefore(t.expires()) ? "live" : "expired"));
        }
        return s.toString();
    }
}
