package org.nxia.lsm.policy.api;

import java.util.List;
import java.util.Map;

import org.osgi.annotation.versioning.ProviderType;

/**
 * The policy consulted on every Gemini call. Calls are denied unless a
 * manifest for the VM profile allows them (docs/gemini-protocol.md,
 * "Capability manifests"); every denial is audit-logged.
 */
@ProviderType
public interface CallPolicy {

    /** Decides on {@code request}, counting it against rate limits and logging a denial. */
    Decision check(CallRequest request);

    /** Decides without counting or logging (for {@code policy:check}). */
    Decision explain(CallRequest request);

    /** The newest denials, oldest first, at most {@code max}. */
    List<AuditEntry> audit(int max);

    /**
     * The confinement the manifest of {@code profile} asks for programs in its
     * System VM; {@link GuestConfinement#NONE} when it has no guest lines, and
     * null when the profile has no manifest (or this policy knows none: the default).
     */
    default GuestConfinement guestConfinement(String profile) {
        return null;
    }

    /** The loaded manifests: profile → its rules, as text. */
    Map<String, String> manifests();
}
