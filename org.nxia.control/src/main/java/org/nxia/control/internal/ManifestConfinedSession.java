package org.nxia.control.internal;

import java.io.IOException;
import java.util.Locale;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.nxia.control.api.AgentSession;
import org.nxia.control.api.Confinement;
import org.nxia.control.api.ExecRequest;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.Execution;
import org.nxia.control.api.Generation;
import org.nxia.control.api.GuestConfig;
import org.nxia.control.api.OutputSink;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.GuestConfinement;

/**
 * A System VM's session as every caller gets it ({@code SystemVm.session()}, the registered
 * {@link AgentSession} service): a program started without a confinement of its own runs under
 * what the manifest the VM was booted under says (its {@code guest} lines, docs/linux-vm.md
 * "Confinement"), looked up at each start, so a manifest changed through ConfigAdmin holds for the
 * next program. A request that carries a confinement is the host caller's choice and goes as it is.
 */
final class ManifestConfinedSession implements AgentSession {

    private final AgentSession session;
    private final Supplier<Confinement> manifest;

    ManifestConfinedSession(AgentSession session, Supplier<Confinement> manifest) {
        this.session = session;
        this.manifest = manifest;
    }

    /**
     * What the manifest of {@code profile} lets its programs touch: nothing is confined without the
     * policy service, without a manifest for the profile, or without guest lines in it. A line the
     * agent would refuse is refused here (IllegalArgumentException): the program never runs
     * unconfined because its manifest is wrong.
     */
    static Confinement of(CallPolicy policy, String profile) {
        GuestConfinement g = policy == null ? null : policy.guestConfinement(profile);
        if (g == null) {
            return Confinement.NONE;
        }
        return new Confinement(g.paths().stream().map(p -> Confinement.PathRule.of(p.path(), p.access())).toList(),
                g.deniedSyscalls(),
                g.namespaces().stream().map(ns -> Confinement.Namespace.valueOf(ns.toUpperCase(Locale.ROOT))).collect(Collectors.toSet()));
    }

    private ExecRequest confined(ExecRequest request) {
        return request.confinement().isNone() ? request.withConfinement(manifest.get()) : request;
    }

    @Override
    public String agent() {
        return session.agent();
    }

    @Override
    public boolean agentIsInit() {
        return session.agentIsInit();
    }

    @Override
    public Execution start(ExecRequest request, OutputSink sink) throws IOException {
        return session.start(confined(request), sink);
    }

    @Override
    public ExecResult exec(ExecRequest request) throws IOException {
        return session.exec(confined(request));
    }

    @Override
    public void configure(GuestConfig config) throws IOException {
        session.configure(config);
    }

    @Override
    public void quiesce() throws IOException {
        session.quiesce();
    }

    @Override
    public void resume() throws IOException {
        session.resume();
    }

    @Override
    public void resume(Generation generation) throws IOException {
        session.resume(generation);
    }

    @Override
    public void shutdown() throws IOException {
        session.shutdown();
    }

    @Override
    public void close() {
        session.close();
    }
}
