package org.nxia.control.api;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a program started through the agent may touch, enforced by the guest
 * kernel (docs/linux-vm.md, "Confinement"): the agent applies it between fork
 * and execve, and a confinement it cannot apply fails the exec.
 *
 * @param paths when not empty, a Landlock rule set handles every file-system
 *              access and only these paths (and what lies beneath them) get
 *              their listed accesses; a denied access fails with EACCES
 * @param deniedSyscalls (in ascending order) x86_64 system call numbers that fail with EPERM (a
 *              seccomp filter; other architectures are killed); empty: none
 * @param namespaces new namespaces the program runs in; empty: the agent's
 */
public record Confinement(List<PathRule> paths, Set<Integer> deniedSyscalls, Set<Namespace> namespaces) {

    /** Bounds the agent enforces too (docs/limits.md). */
    public static final int MAX_PATH_RULES = 64, MAX_PATH_BYTES = 4095, MAX_DENIED_SYSCALLS = 128, MAX_SYSCALL = 1023;

    /** No confinement: the program runs as the agent's other programs do. */
    public static final Confinement NONE = new Confinement(List.of(), Set.of());

    /** Paths and syscalls, no namespaces. */
    public Confinement(List<PathRule> paths, Set<Integer> deniedSyscalls) {
        this(paths, deniedSyscalls, Set.of());
    }

    public Confinement {
        EnumSet<Namespace> ns = EnumSet.noneOf(Namespace.class);
        ns.addAll(namespaces);
        namespaces = Collections.unmodifiableSet(ns);
        paths = List.copyOf(paths);
        deniedSyscalls = Collections.unmodifiableSortedSet(new TreeSet<>(deniedSyscalls));
        if (paths.size() > MAX_PATH_RULES)
            throw new IllegalArgumentException(paths.size() + " path rules, over " + MAX_PATH_RULES);
        if (deniedSyscalls.size() > MAX_DENIED_SYSCALLS)
            throw new IllegalArgumentException(deniedSyscalls.size() + " denied syscalls, over " + MAX_DENIED_SYSCALLS);
        for (int nr : deniedSyscalls)
            if (nr < 0 || nr > MAX_SYSCALL)
                throw new IllegalArgumentException("syscall number " + nr + " is not in 0.." + MAX_SYSCALL);
    }

    /** Only {@code rules}' paths, no syscall list. */
    public static Confinement paths(PathRule... rules) {
        return new Confinement(List.of(rules), Set.of());
    }

    /** The same paths, with {@code numbers} denied. */
    public Confinement denying(Integer... numbers) {
        Set<Integer> d = new TreeSet<>(deniedSyscalls);
        d.addAll(List.of(numbers));
        return new Confinement(paths, d, namespaces);
    }

    /** The same, in new namespaces {@code ns} too. */
    public Confinement unsharing(Namespace... ns) {
        EnumSet<Namespace> all = EnumSet.noneOf(Namespace.class);
        all.addAll(namespaces);
        all.addAll(List.of(ns));
        return new Confinement(paths, deniedSyscalls, all);
    }

    public boolean isNone() {
        return paths.isEmpty() && deniedSyscalls.isEmpty() && namespaces.isEmpty();
    }

    /** For logs: {@code paths=[r /etc, rx /usr] deny=[41]}. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("paths=[");
        for (int i = 0; i < paths.size(); i++)
            b.append(i > 0 ? ", " : "").append(paths.get(i));
        b.append("] deny=").append(deniedSyscalls);
        return namespaces.isEmpty() ? b.toString() : b.append(" unshare=").append(namespaces).toString();
    }

    /** A namespace a program can get of its own (the agent needs CAP_SYS_ADMIN: it has it as the guest's init). */
    public enum Namespace {
        /** its mounts are its own: none propagate in or out */
        MOUNT(1),
        /** a network of its own: only loopback */
        NET(2),
        /**
         * processes of its own: the program is pid 2 under a pid 1 of the agent's that reaps orphans, its
         * {@code /proc} shows only them (so a mount namespace comes with it), and what it leaves running when
         * it ends is killed
         */
        PID(4),
        /**
         * ids of its own: the program runs as root of a user namespace whose ids 0..65535 are
         * 100000..165535 of the guest's, so it owns nothing of the guest's (a root-only file is closed
         * to it) and holds its capabilities only over the namespaces made with it
         *
         * @since 1.6
         */
        USER(8);

        private final int bit;

        Namespace(int bit) {
            this.bit = bit;
        }

        /** Its bit in the protocol's UNSHARE field. */
        public int bit() {
            return bit;
        }
    }

    /** One kind of access to a path. */
    public enum Access {
        /** read files, list directories */
        READ(1),
        /** write files; create, remove, rename, truncate */
        WRITE(2),
        /** execute files */
        EXECUTE(4);

        private final int bit;

        Access(int bit) {
            this.bit = bit;
        }

        /** Its bit in the protocol's FS_RULE field. */
        public int bit() {
            return bit;
        }
    }

    /**
     * Accesses allowed to an absolute path and what lies beneath it.
     *
     * @param path absolute, without NUL, at most {@link #MAX_PATH_BYTES} bytes of UTF-8; it must exist in the
     *             guest when the program starts
     * @param access not empty
     */
    public record PathRule(String path, Set<Access> access) {
        public PathRule {
            EnumSet<Access> a = EnumSet.noneOf(Access.class);
            a.addAll(access);
            access = Collections.unmodifiableSet(a);
            if (!path.startsWith("/") || path.indexOf('\0') >= 0)
                throw new IllegalArgumentException("path rule " + path + " is not an absolute path without NUL");
            if (path.getBytes(StandardCharsets.UTF_8).length > MAX_PATH_BYTES)
                throw new IllegalArgumentException("path rule of " + path.length() + " characters is over " + MAX_PATH_BYTES + " bytes");
            if (access.isEmpty())
                throw new IllegalArgumentException("path rule " + path + " allows nothing");
        }

        /** {@code "rwx"}-style: e.g. {@code of("/usr", "rx")}. */
        public static PathRule of(String path, String rwx) {
            EnumSet<Access> a = EnumSet.noneOf(Access.class);
            for (char ch : rwx.toCharArray())
                a.add(switch (ch) {
                    case 'r' -> Access.READ;
                    case 'w' -> Access.WRITE;
                    case 'x' -> Access.EXECUTE;
                    default -> throw new IllegalArgumentException("access " + rwx + " is not made of r, w, x");
                });
            return new PathRule(path, a);
        }

        /** The protocol's access bits. */
        public int bits() {
            int b = 0;
            for (Access a : access)
                b |= a.bit();
            return b;
        }

        @Override
        public String toString() {
            return (access.contains(Access.READ) ? "r" : "") + (access.contains(Access.WRITE) ? "w" : "")
                    + (access.contains(Access.EXECUTE) ? "x" : "") + " " + path;
        }
    }
}
