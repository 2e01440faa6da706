package org.nxia.vmm.api;

import java.lang.foreign.MemorySegment;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A host function a guest calls by name (see {@code docs/guest-abi.md}, host
 * calls). Register it as an OSGi service with the property
 * {@value #NAME_PROPERTY}; a bundle installed later is callable by the next
 * call, without a restart.
 */
@ConsumerType
public interface HostFunction {

    /** Service property: the name guests call, at most 31 bytes of ASCII. */
    String NAME_PROPERTY = "nxia.hostfunction";

    /**
     * Service property: who decides whether a guest may call the function. Absent, the platform's
     * call policy decides each call (manifest service {@code hostfunction}, the name as the method:
     * {@code allow out hostfunction.upper}); {@value #POLICES_ITSELF} says the function checks every
     * call it serves with the policy itself, as Gemini's attach does for the calls of its sessions.
     */
    String POLICY_PROPERTY = "nxia.hostfunction.policy";

    /** The value of {@link #POLICY_PROPERTY} for a function that checks its calls itself. */
    String POLICES_ITSELF = "self";

    /**
     * Handles one call on the calling vCPU's thread.
     *
     * @param argument read-only view of the guest's argument bytes
     * @param result   the guest's result buffer (its capacity is {@code result.byteSize()})
     * @return the number of result bytes written, at most {@code result.byteSize()}
     * @throws Exception any failure; the guest sees {@code NXIA_HC_EFAIL}
     */
    long call(MemorySegment argument, MemorySegment result) throws Exception;

    /**
     * Handles one call knowing which VM made it; the VMM calls this form. The
     * default ignores the context.
     */
    default long call(HostCallContext context, MemorySegment argument, MemorySegment result) throws Exception {
        return call(argument, result);
    }
}
