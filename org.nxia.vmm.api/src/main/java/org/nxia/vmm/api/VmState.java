package org.nxia.vmm.api;

/** The life of a VM: created → running ⇄ paused → stopped. */
public enum VmState {
    CREATED, RUNNING, PAUSED, STOPPED
}
