package org.nxia.profile.api;

import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/** The profiles configured now. */
@ProviderType
public interface ProfileRegistry {

    /** Every valid profile, by name. */
    List<Profile> list();

    /** The profile called {@code name}, at its current version. */
    Optional<Profile> get(String name);

    /** Configurations refused, by configuration PID, with the reason (the previous version of that profile stays). */
    Map<String, String> refused();
}
