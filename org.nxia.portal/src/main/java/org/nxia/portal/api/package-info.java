/**
 * Portal: zero-copy shared memory between the host and guests.
 *
 * <p>A {@link org.nxia.portal.api.PortalArena} hands out bounded
 * {@link org.nxia.portal.api.Ref}erences (offset, length, generation) into a
 * shared region; no raw pointer crosses a boundary. A
 * {@link org.nxia.portal.api.Ring} moves byte messages (SPSC or MPMC).
 * {@link org.nxia.portal.api.Portals} manages named regions and maps them into
 * VMs that hold the capability (a {@code portal} device in their profile). Everything read from shared memory is untrusted: a corrupt or forged
 * value fails with a {@link org.nxia.portal.api.PortalException}, never with an
 * access outside the region. The byte layouts are specified in
 * {@code docs/portal-abi.md}.
 */
@Export
@Version("3.1.0")
package org.nxia.portal.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
