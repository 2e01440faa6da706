/**
 * Gemini: policy-gated calls across the VM boundary (docs/gemini-protocol.md).
 *
 * <p>A {@link org.nxia.gemini.api.GeminiSession} carries calls both ways over
 * a {@link org.nxia.gemini.api.Transport}: guests call host services (OSGi
 * services with {@value org.nxia.gemini.api.Gemini#SERVICE_PROPERTY}), the
 * host calls functions a guest registered, through typed proxies. Every call
 * is checked by the policy service and its capability tokens. Large byte
 * arguments cross by bounded reference into a Portal region
 * ({@link org.nxia.gemini.api.Marshalling}).
 */
@Export
@Version("1.1.0")
package org.nxia.gemini.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
