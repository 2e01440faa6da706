package org.nxia.lsm.policy.api;

import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a profile's manifest lets programs in its System VM touch (issue 13
 * §5): its {@code guest path}, {@code guest deny-syscall} and {@code guest unshare} lines
 * (docs/gemini-protocol.md, "Capability manifests"). The System VM's agent
 * enforces it with Landlock and seccomp (org.nxia.control's
 * {@code Confinement}, docs/linux-vm.md).
 *
 * @param paths in manifest order; empty: file-system access is not confined
 * @param deniedSyscalls x86_64 numbers, ascending; empty: none denied
 * @param namespaces of {@code guest unshare} lines: {@code mount}, {@code net}, {@code pid}, {@code user}, sorted; empty: none
 */
public record GuestConfinement(List<Path> paths, Set<Integer> deniedSyscalls, Set<String> namespaces) {

    /** A manifest without guest lines. */
    public static final GuestConfinement NONE = new GuestConfinement(List.of(), Set.of(), Set.of());

    public GuestConfinement {
        paths = List.copyOf(paths);
        deniedSyscalls = Collections.unmodifiableSortedSet(new TreeSet<>(deniedSyscalls));
        namespaces = Collections.unmodifiableSortedSet(new TreeSet<>(namespaces));
    }

    public boolean isNone() {
        return paths.isEmpty() && deniedSyscalls.isEmpty() && namespaces.isEmpty();
    }

    /**
     * One {@code guest path} line.
     *
     * @param access a non-empty subset of {@code rwx}, in that order
     * @param path absolute
     */
    public record Path(String access, String path) {
    }
}
