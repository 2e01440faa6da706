package org.nxia.vmm.api;

import java.util.Map;
import java.util.Objects;
import org.nxia.vmm.spi.HypervisorInfo;

/**
 * A VM at a glance, for {@code vm:info} and tools.
 *
 * @param id            unique within the platform
 * @param name          the profile's name
 * @param state         where it is in its life
 * @param memoryBytes   guest RAM
 * @param vcpus         number of vCPUs
 * @param image         the guest image path
 * @param hypervisor    the backend it runs on
 * @param executionMode how the guest's instructions run: {@code hardware}, {@code native (PVM)},
 *                      {@code emulated}, or {@code unknown} before it has run
 * @param counters      backend and VMM counters (exits, insn_emulation, host calls, ...)
 */
public record VmInfo(String id, String name, VmState state, long memoryBytes, int vcpus, String image,
                     HypervisorInfo hypervisor, String executionMode, Map<String, Long> counters) {

    public VmInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(hypervisor, "hypervisor");
        Objects.requireNonNull(executionMode, "executionMode");
        counters = Map.copyOf(counters);
    }
}
