package org.nxia.control.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Settings applied by {@link AgentSession#configure}, in this order.
 *
 * @param hostname the guest's hostname, or null to leave it
 * @param env variables every later program gets
 * @param mounts file systems to mount (target directories are created)
 */
public record GuestConfig(String hostname, Map<String, String> env, List<Mount> mounts) {

    public GuestConfig {
        env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
        mounts = List.copyOf(mounts);
    }

    /**
     * @param options comma-separated; ro, nosuid, nodev, noexec, relatime,
     *        noatime become mount flags, the rest goes to the file system
     */
    public record Mount(String source, String target, String fsType, String options) {
    }
}
