package org.nxia.shell.systemvm.internal;

import java.time.Duration;

import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Marshalling;

/**
 * bench:sysgemini's host end, the one class of this bundle that names Gemini's types: loaded only
 * where a Gemini service exists, so the bundle resolves in an assembly without Gemini (its import
 * of org.nxia.gemini.api is optional).
 */
final class GeminiHostSide implements SystemVmGeminiBench.HostSide {

    private final GeminiSession session;
    private final Duration timeout;

    private GeminiHostSide(GeminiSession session, Duration timeout) {
        this.session = session;
        this.timeout = timeout;
    }

    /** The broker session of VM {@code vmId}, from the Gemini service {@code gemini}. */
    static SystemVmGeminiBench.HostSide open(Object gemini, String vmId) throws java.io.IOException {
        GeminiSession s = ((Gemini) gemini).sessionOfVm(vmId)
                .orElseThrow(() -> new java.io.IOException("the VM " + vmId + " opened no Gemini session"));
        return new GeminiHostSide(s, SystemVmGeminiBench.T);
    }

    @Override
    public void nullCall() {
        session.call(SystemVmGeminiBench.SERVICE, "echo", timeout);
    }

    @Override
    public Object sum(byte[] data, boolean byReference) {
        return session.call(SystemVmGeminiBench.SERVICE, "sum", byReference ? Marshalling.REFERENCE : Marshalling.COPY, timeout, data);
    }
}
