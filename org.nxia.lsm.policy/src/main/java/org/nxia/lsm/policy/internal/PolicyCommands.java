package org.nxia.lsm.policy.internal;

import java.util.List;
import java.util.Map;

import org.nxia.lsm.policy.api.AuditEntry;
import org.nxia.lsm.policy.api.CallPolicy;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.lsm.policy.api.Decision;
import org.nxia.lsm.policy.api.GuestProcess;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** Gogo commands: policy:show, policy:check, policy:audit. */
@Component(service = PolicyCommands.class, property = {"osgi.command.scope=policy",
        "osgi.command.function=show", "osgi.command.function=check", "osgi.command.function=audit"})
public final class PolicyCommands {

    private final CallPolicy policy;

    @Activate
    public PolicyCommands(@Reference CallPolicy policy) {
        this.policy = policy;
    }

    /** policy:show — the loaded manifests and refused configurations. */
    public String show() {
        StringBuilder s = new StringBuilder();
        Map<String, String> all = policy.manifests();
        if (all.isEmpty()) {
            s.append("no manifests loaded: every call is denied (add a factory configuration ")
                    .append(PolicyService.FACTORY_PID).append(" with 'manifest' or 'file')\n");
        }
        all.forEach((profile, text) -> s.append("== profile ").append(profile).append(" ==\n").append(text.strip()).append('\n'));
        if (policy instanceof PolicyService p) {
            p.errors().forEach((pid, why) -> s.append("REFUSED ").append(pid).append(": ").append(why).append('\n'));
        }
        return s.toString();
    }

    /**
     * policy:check PROFILE CALLER in|out SERVICE METHOD — what the policy would decide (nothing is
     * counted). CALLER is {@code host}, {@code host,bundle:NAME} for a host bundle, {@code guest:VM}, or for
     * a System VM process {@code guest:VM,uid:N,gid:N,exe:PATH} (any of the three facets; the missing
     * ones are 0 and empty).
     */
    public String check(String profile, String caller, String direction, String service, String method) {
        CallRequest.Direction d = switch (direction) {
            case "out" -> CallRequest.Direction.GUEST_TO_HOST;
            case "in" -> CallRequest.Direction.HOST_TO_GUEST;
            default -> throw new IllegalArgumentException("direction must be 'out' (guest calls host) or 'in' (host calls guest)");
        };
        String[] parts = caller.split(",", -1);
        if (parts.length == 2 && parts[1].startsWith("bundle:")) {
            Decision decision = policy.explain(new CallRequest(profile, 0, null, parts[0], d, service, method, false, null,
                    parts[1].substring(7)));
            return (decision.allowed() ? "ALLOW " : "DENY ") + decision.reason();
        }
        GuestProcess process = parts.length == 1 ? null : process(parts);
        Decision decision = policy.explain(new CallRequest(profile, 0, null, parts[0], d, service, method, false, process));
        return (decision.allowed() ? "ALLOW " : "DENY ") + decision.reason();
    }

    private static GuestProcess process(String[] parts) {
        long uid = 0;
        long gid = 0;
        String exe = "";
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i];
            try {
                if (p.startsWith("uid:")) {
                    uid = Long.parseLong(p.substring(4));
                } else if (p.startsWith("gid:")) {
                    gid = Long.parseLong(p.substring(4));
                } else if (p.startsWith("exe:")) {
                    exe = p.substring(4);
                } else {
                    throw new IllegalArgumentException("caller facet '" + p + "': expected uid:N, gid:N or exe:PATH (or bundle:NAME alone)");
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("caller facet '" + p + "': not a number");
            }
        }
        return new GuestProcess(uid, gid, 0, exe);
    }

    /** policy:audit — the newest 50 denials. */
    public String audit() {
        return audit(50);
    }

    /** policy:audit N — the newest N denials. */
    public String audit(int max) {
        List<AuditEntry> entries = policy.audit(max);
        if (entries.isEmpty()) {
            return "no denials";
        }
        StringBuilder s = new StringBuilder();
        for (AuditEntry e : entries) {
            CallRequest r = e.request();
            s.append(e.time()).append(' ').append(r.who()).append(" session ").append(r.session()).append(" profile ")
                    .append(r.profile()).append(r.direction() == CallRequest.Direction.GUEST_TO_HOST ? " out " : " in ")
                    .append(r.service()).append('.').append(r.method()).append(": ").append(e.reason()).append('\n');
        }
        return s.toString();
    }
}
