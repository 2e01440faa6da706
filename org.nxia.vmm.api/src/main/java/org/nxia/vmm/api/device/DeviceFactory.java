package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Makes devices of one type. Register it as an OSGi service with the
 * property {@value #TYPE_PROPERTY} equal to {@link #type()}.
 */
@ConsumerType
public interface DeviceFactory {

    /** Service property: the type id profiles use. */
    String TYPE_PROPERTY = "nxia.device.type";

    /** The type id, e.g. {@code uart}: lower-case letters, digits and dashes. */
    String type();

    /** One line for {@code device:list}: what it is and its parameters. */
    String description();

    /**
     * Creates the device for one VM. It claims what it needs through
     * {@code context} before it returns.
     *
     * @throws IllegalArgumentException for a bad parameter, saying which and what is allowed
     */
    Device create(DeviceConfig config, DeviceContext context);
}
