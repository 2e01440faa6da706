package org.nxia.vmm.internal;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;

/** A call policy that decides by a predicate and keeps every request it was asked about. */
final class RecordingPolicy implements CallPolicy {

    final List<CallRequest> checked = new CopyOnWriteArrayList<>();
    private final Predicate<CallRequest> allows;

    RecordingPolicy(Predicate<CallRequest> allows) {
        this.allows = allows;
    }

    static RecordingPolicy allowingAll() {
        return new RecordingPolicy(r -> true);
    }

    @Override
    public Decision check(CallRequest request) {
        checked.add(request);
        return explain(request);
    }

    @Override
    public Decision explain(CallRequest request) {
        return allows.test(request) ? Decision.allow("test") : Decision.deny("test");
    }

    @Override
    public List<AuditEntry> audit(int max) {
        return List.of();
    }

    @Override
    public Map<String, String> manifests() {
        return Map.of();
    }
}
