package org.nxia.lsm.policy.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.CallRequest.Direction;
import org.nxia.lsm.policy.api.GuestConfinement;

/**
 * A parsed capability manifest (docs/gemini-protocol.md, "Capability
 * manifests"): the rules for one VM profile, first match wins, default deny.
 */
record Manifest(String profile, List<Rule> rules, List<Grant> grants, GuestConfinement guest, String source) {

    /** Bounds of the guest lines: the agent's (docs/limits.md, "Control agent"). */
    static final int MAX_CALLERS = 8;

    static final int MAX_GUEST_PATHS = 64, MAX_PATH_BYTES = 4095, MAX_DENIED_SYSCALLS = 128, MAX_SYSCALL = 1023;

    /** One allow or deny line; {@code perWindow} 0 means no rate limit. */
    record Rule(int line, boolean allow, Direction direction, Pattern service, Pattern method, List<Pattern> callers,
                long perWindow, long windowNanos, String text) {

        boolean matches(CallRequest r) {
            if (direction != r.direction() || !service.matcher(r.service()).matches() || !method.matcher(r.method()).matches()) {
                return false;
            }
            for (Pattern c : callers) { // every caller= must hold: caller=uid:1000 caller=exe:/usr/bin/x is both
                if (!caller(c, r)) {
                    return false;
                }
            }
            return true;
        }

        /** The caller's name, or one of its facets: a System VM process's (uid:N, gid:N, exe:PATH), a host bundle's (bundle:NAME). */
        private static boolean caller(Pattern c, CallRequest r) {
            if (c.matcher(r.caller()).matches()) {
                return true;
            }
            for (String f : r.facets()) {
                if (c.matcher(f).matches()) {
                    return true;
                }
            }
            return false;
        }
    }

    /** A {@code grant catastrophic} line. */
    record Grant(int line, Direction direction, Pattern service, Pattern method, String text) {

        boolean matches(CallRequest r) {
            return direction == r.direction() && service.matcher(r.service()).matches() && method.matcher(r.method()).matches();
        }
    }

    /** A manifest that cannot be used; the message names the line and what is wrong. */
    static final class Invalid extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        Invalid(String where, int line, String message) {
            super(where + ":" + line + ": " + message);
        }
    }

    static Manifest parse(String text, String where) {
        String profile = null;
        List<Rule> rules = new ArrayList<>();
        List<Grant> grants = new ArrayList<>();
        List<GuestConfinement.Path> guestPaths = new ArrayList<>();
        Set<Integer> denied = new TreeSet<>();
        Set<String> namespaces = new TreeSet<>();
        String[] lines = text.split("\r?\n", -1);
        for (int n = 1; n <= lines.length; n++) {
            String line = lines[n - 1];
            int hash = line.indexOf('#');
            String body = (hash >= 0 ? line.substring(0, hash) : line).strip();
            if (body.isEmpty()) {
                continue;
            }
            String[] w = body.split("\\s+");
            switch (w[0]) {
                case "profile" -> {
                    if (profile != null) {
                        throw new Invalid(where, n, "a second 'profile' line (the manifest is for '" + profile + "')");
                    }
                    if (w.length != 2 || !w[1].matches("[A-Za-z0-9_.-]{1,64}")) {
                        throw new Invalid(where, n, "expected 'profile <name>' with a name of 1 to 64 of A-Z a-z 0-9 _ . -");
                    }
                    profile = w[1];
                }
                case "allow", "deny" -> {
                    requireProfile(profile, where, n);
                    rules.add(rule(w, n, where, body));
                }
                case "grant" -> {
                    requireProfile(profile, where, n);
                    if (w.length != 4 || !w[1].equals("catastrophic")) {
                        throw new Invalid(where, n, "expected 'grant catastrophic in|out <service>.<method>'");
                    }
                    Pattern[] t = target(w[3], where, n);
                    grants.add(new Grant(n, direction(w[2], where, n), t[0], t[1], body));
                }
                case "guest" -> {
                    requireProfile(profile, where, n);
                    guest(w, n, where, guestPaths, denied, namespaces);
                }
                default -> throw new Invalid(where, n, "unknown keyword '" + w[0]
                        + "' (expected profile, allow, deny, grant or guest; '#' starts a comment)");
            }
        }
        if (profile == null) {
            throw new Invalid(where, lines.length, "no 'profile <name>' line");
        }
        return new Manifest(profile, List.copyOf(rules), List.copyOf(grants), new GuestConfinement(guestPaths, denied, namespaces), text);
    }

    /** {@code guest path <rwx> <absolute path>}, {@code guest deny-syscall <n>[,<n>...]} or {@code guest unshare mount|net|pid|user[,...]}. */
    private static void guest(String[] w, int n, String where, List<GuestConfinement.Path> paths, Set<Integer> denied,
            Set<String> namespaces) {
        if (w.length == 4 && w[1].equals("path")) {
            if (!w[2].matches("r?w?x?") || w[2].isEmpty()) {
                throw new Invalid(where, n, "access '" + w[2] + "' must be r, w, x or several of them in that order (rx, rwx)");
            }
            if (!w[3].startsWith("/") || w[3].getBytes(StandardCharsets.UTF_8).length > MAX_PATH_BYTES) {
                throw new Invalid(where, n, "guest path '" + w[3] + "' must be absolute and at most " + MAX_PATH_BYTES + " bytes");
            }
            if (paths.size() == MAX_GUEST_PATHS) {
                throw new Invalid(where, n, "more than " + MAX_GUEST_PATHS + " guest paths");
            }
            paths.add(new GuestConfinement.Path(w[2], w[3]));
        } else if (w.length == 3 && w[1].equals("deny-syscall")) {
            for (String nr : w[2].split(",", -1)) {
                if (!nr.matches("\\d{1,4}") || Integer.parseInt(nr) > MAX_SYSCALL) {
                    throw new Invalid(where, n, "syscall '" + nr + "' must be an x86_64 number from 0 to " + MAX_SYSCALL);
                }
                denied.add(Integer.parseInt(nr));
            }
            if (denied.size() > MAX_DENIED_SYSCALLS) {
                throw new Invalid(where, n, "more than " + MAX_DENIED_SYSCALLS + " denied syscalls");
            }
        } else if (w.length == 3 && w[1].equals("unshare")) {
            for (String ns : w[2].split(",", -1)) {
                if (!ns.equals("mount") && !ns.equals("net") && !ns.equals("pid") && !ns.equals("user")) {
                    throw new Invalid(where, n, "namespace '" + ns + "' must be mount, net, pid or user");
                }
                namespaces.add(ns);
            }
        } else {
            throw new Invalid(where, n, "expected 'guest path <rwx> <absolute path>', 'guest deny-syscall <n>[,<n>...]'"
                    + " or 'guest unshare mount|net|pid|user[,...]'");
        }
    }

    private static void requireProfile(String profile, String where, int n) {
        if (profile == null) {
            throw new Invalid(where, n, "the first line must be 'profile <name>'");
        }
    }

    private static Rule rule(String[] w, int n, String where, String body) {
        if (w.length < 3) {
            throw new Invalid(where, n, "expected '" + w[0] + " in|out <service>.<method> [caller=<glob>] [rate=<n>/s|m]'");
        }
        Direction d = direction(w[1], where, n);
        Pattern[] t = target(w[2], where, n);
        List<Pattern> callers = new ArrayList<>();
        long per = 0;
        long window = 0;
        for (int i = 3; i < w.length; i++) {
            if (w[i].startsWith("caller=")) {
                if (callers.size() == MAX_CALLERS) {
                    throw new Invalid(where, n, "at most " + MAX_CALLERS + " caller= options per rule");
                }
                callers.add(callerGlob(w[i].substring(7), where, n));
            } else if (w[i].startsWith("rate=")) {
                if (w[0].equals("deny")) {
                    throw new Invalid(where, n, "a deny rule takes no rate");
                }
                var m = Pattern.compile("(\\d{1,9})/([sm])").matcher(w[i].substring(5));
                if (!m.matches() || Long.parseLong(m.group(1)) == 0) {
                    throw new Invalid(where, n, "rate '" + w[i].substring(5) + "' must be <count>/s or <count>/m with a count of 1 or more");
                }
                per = Long.parseLong(m.group(1));
                window = m.group(2).equals("s") ? 1_000_000_000L : 60_000_000_000L;
            } else {
                throw new Invalid(where, n, "unknown option '" + w[i] + "' (expected caller=<glob> or rate=<n>/s|m)");
            }
        }
        return new Rule(n, w[0].equals("allow"), d, t[0], t[1], List.copyOf(callers), per, window, body);
    }

    private static Direction direction(String s, String where, int n) {
        return switch (s) {
            case "out" -> Direction.GUEST_TO_HOST;
            case "in" -> Direction.HOST_TO_GUEST;
            default -> throw new Invalid(where, n, "direction '" + s + "' must be 'out' (guest calls host) or 'in' (host calls guest)");
        };
    }

    /** {@code service.method}, split at the last dot; {@code *} alone is every service and method. */
    private static Pattern[] target(String s, String where, int n) {
        if (s.equals("*")) {
            return new Pattern[] {glob("*", where, n), glob("*", where, n)};
        }
        int dot = s.lastIndexOf('.');
        if (dot <= 0 || dot == s.length() - 1) {
            throw new Invalid(where, n, "target '" + s + "' must be <service>.<method> (globs allowed, e.g. files.* or *)");
        }
        return new Pattern[] {glob(s.substring(0, dot), where, n), glob(s.substring(dot + 1), where, n)};
    }

    private static Pattern glob(String g, String where, int n) {
        if (!g.matches("[A-Za-z0-9_.:*-]{1,128}")) {
            throw new Invalid(where, n, "pattern '" + g + "' may hold only A-Z a-z 0-9 _ . : - and * (any run of characters)");
        }
        return compile(g);
    }

    /** A caller= glob: as a name pattern, and '/' too, for {@code exe:/usr/bin/x}. */
    private static Pattern callerGlob(String g, String where, int n) {
        if (!g.matches("[A-Za-z0-9_.:*/+-]{1,4100}")) {
            throw new Invalid(where, n, "caller pattern '" + g + "' may hold only A-Z a-z 0-9 _ . : / + - and * (any run of characters)");
        }
        return compile(g);
    }

    private static Pattern compile(String g) {
        StringBuilder re = new StringBuilder();
        String[] parts = g.split("\\*", -1);
        for (int i = 0; i < parts.length; i++) {
            re.append(i == 0 ? "" : ".*").append(parts[i].isEmpty() ? "" : Pattern.quote(parts[i]));
        }
        return Pattern.compile(re.toString());
    }
}
