/**
 * The call policy: allow/deny Gemini calls by VM profile, caller, service and
 * method, with rate limits and an audit log of denials.
 */
@Export
@Version("2.3.0")
package org.nxia.lsm.policy.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
