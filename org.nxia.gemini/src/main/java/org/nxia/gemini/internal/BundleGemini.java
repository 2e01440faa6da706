package org.nxia.gemini.internal;

import java.nio.channels.ByteChannel;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.nxia.gemini.api.Gemini;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.gemini.api.Transport;
import org.osgi.framework.Bundle;
import org.osgi.service.component.ComponentContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ServiceScope;

/**
 * The Gemini service as one bundle gets it (bundle scope: the framework makes one per using
 * bundle and says which): the core's sessions, each seen as {@link BundleSession}, so the calls
 * the bundle makes into guests name it to the policy and the audit log.
 */
@Component(service = Gemini.class, scope = ServiceScope.BUNDLE)
public final class BundleGemini implements Gemini {

    private final GeminiImpl core;
    private final String bundle;

    @Activate
    public BundleGemini(ComponentContext context, @Reference GeminiImpl core) {
        this(core, name(context.getUsingBundle()));
    }

    BundleGemini(GeminiImpl core, String bundle) {
        this.core = core;
        this.bundle = bundle;
    }

    /** The symbolic name, or for a bundle without one its location (never empty: a rule must be able to name it). */
    private static String name(Bundle b) {
        return b.getSymbolicName() != null ? b.getSymbolicName() : "id-" + b.getBundleId();
    }

    private GeminiSession view(GeminiSession s) {
        return s instanceof Session session ? new BundleSession(session, bundle) : s;
    }

    @Override
    public List<GeminiSession> sessions() {
        return core.sessions().stream().map(this::view).toList();
    }

    @Override
    public Optional<GeminiSession> session(long id) {
        return core.session(id).map(this::view);
    }

    @Override
    public Optional<GeminiSession> sessionOfVm(String vmId) {
        return core.sessionOfVm(vmId).map(this::view);
    }

    @Override
    public Map<String, List<String>> services() {
        return core.services();
    }

    @Override
    public GeminiSession open(Transport transport, String profile, String vmId) {
        return view(core.open(transport, profile, vmId));
    }

    @Override
    public GeminiSession open(ByteChannel stream, String profile, String vmId) {
        return view(core.open(stream, profile, vmId));
    }

    @Override
    public GeminiSession openBroker(ByteChannel stream, String profile, String vmId) {
        return view(core.openBroker(stream, profile, vmId));
    }
}
