package org.nxia.lsm.policy.api;

import java.time.Instant;

/** One denied call: who, what, why. */
public record AuditEntry(Instant time, CallRequest request, String reason) {
}
