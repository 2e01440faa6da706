package org.nxia.lsm.policy.api;

import java.util.List;

/**
 * The Linux process in a System VM that made a call through the VM's Gemini broker, as the guest
 * kernel told the broker ({@code SO_PEERCRED}, {@code /proc/PID/exe}): the guest cannot name
 * another process, but the whole VM is only as honest as its kernel, so a grant by process tells
 * processes of one VM apart, never VMs.
 *
 * @param uid the caller's user id
 * @param gid the caller's group id
 * @param pid the caller's process id (for the audit log; no rule matches it, ids are reused)
 * @param exe the caller's executable, absolute, or empty when the kernel would not say
 */
public record GuestProcess(long uid, long gid, long pid, String exe) {

    /** Longest {@code exe} accepted, in UTF-8 bytes (Linux's PATH_MAX less its NUL). */
    public static final int MAX_EXE_BYTES = 4095;

    public GuestProcess {
        if (uid < 0 || uid > 0xffffffffL || gid < 0 || gid > 0xffffffffL || pid < 0 || pid > 0xffffffffL) {
            throw new IllegalArgumentException("uid, gid and pid are unsigned 32-bit numbers");
        }
        if (exe == null || exe.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_EXE_BYTES) {
            throw new IllegalArgumentException("exe must be given and at most " + MAX_EXE_BYTES + " bytes");
        }
    }

    /** What a manifest's {@code caller=} glob can match besides the VM's own name: {@code uid:N}, {@code gid:N}, {@code exe:PATH}. */
    public List<String> facets() {
        return List.of("uid:" + uid, "gid:" + gid, "exe:" + exe);
    }

    @Override
    public String toString() {
        return "uid=" + uid + " gid=" + gid + " pid=" + pid + " exe=" + (exe.isEmpty() ? "?" : exe);
    }
}
