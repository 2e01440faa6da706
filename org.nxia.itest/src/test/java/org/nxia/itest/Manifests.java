package org.nxia.itest;

import java.util.Hashtable;

import org.nxia.lsm.policy.api.CallPolicy;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;

/** A capability manifest loaded through ConfigAdmin for the length of a test, as an administrator would. */
final class Manifests implements AutoCloseable {

    private final Configuration configuration;
    private final CallPolicy policy;
    private final String profile;

    private Manifests(Configuration configuration, CallPolicy policy, String profile) {
        this.configuration = configuration;
        this.policy = policy;
        this.profile = profile;
    }

    /** Loads {@code rules} (manifest lines) for {@code profile} and waits until the policy has them. */
    static Manifests load(ConfigurationAdmin config, CallPolicy policy, String profile, String rules) throws Exception {
        Configuration c = config.createFactoryConfiguration("org.nxia.lsm.policy.manifest", "?");
        String text = "profile " + profile + "\n" + rules;
        Hashtable<String, Object> props = new Hashtable<>();
        props.put("manifest", text);
        c.update(props);
        long end = System.nanoTime() + 10_000_000_000L;
        while (!text.equals(policy.manifests().get(profile))) {
            if (System.nanoTime() - end > 0) {
                c.delete();
                throw new AssertionError("the manifest for '" + profile + "' did not load within 10 s: " + policy.manifests());
            }
            Thread.sleep(20);
        }
        return new Manifests(c, policy, profile);
    }

    @Override
    public void close() throws Exception {
        configuration.delete();
        long end = System.nanoTime() + 10_000_000_000L;
        while (policy.manifests().containsKey(profile) && System.nanoTime() - end < 0) {
            Thread.sleep(20);
        }
    }
}
