package org.nxia.portal.api;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A VM's grant of one region (from its profile's {@code portal} device) and,
 * while mapped, where the guest sees the region.
 */
@ProviderType
public interface PortalMapping {

    String vmId();

    String region();

    /** The rights granted by the VM's profile. */
    Rights rights();

    boolean mapped();

    /** Guest-physical address while mapped, else 0. */
    long gpa();

    Doorbell doorbell();
}
