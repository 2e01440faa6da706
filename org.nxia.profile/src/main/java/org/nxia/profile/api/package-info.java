/**
 * VM profiles as configuration: each is a ConfigAdmin factory configuration (factory PID
 * {@code org.nxia.profile}, shipped as files under {@code distro/conf} that Felix FileInstall
 * watches) naming a VM kind, its memory, vCPUs, device set, manifest and placement. A changed
 * profile applies to the next VM; {@link org.nxia.profile.api.Profile#version()} says which
 * revision a VM was made from.
 *
 * <p>1.1: {@code Profile.Placement.host()}, the placement as the VMM takes it.
 * <p>1.2: {@code Profile.hyperv()}: a System VM whose guest sees a Hyper-V partition.
 */
@Export
@Version("1.2.0")
package org.nxia.profile.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
