package org.nxia.vmm.api;

/** The life of a VM: created → running → stopped (paused is reserved for snapshots). */
public enum VmState {
    CREATED, RUNNING, PAUSED, STOPPED
}
