package org.nxia.cluster.internal;

import java.lang.System.Logger;
import java.time.Duration;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;

import org.nxia.cluster.api.NodeAdmin;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/** The nodes this node knows: its own {@link NodeAdmin} and those Remote Service Admin has imported, by name. */
@Component(service = Nodes.class)
public final class Nodes {

    /** One node's admin service, and whether it came from another process. */
    record Node(String name, NodeAdmin admin, boolean remote, Object serviceId) {
    }

    /** Nodes one node keeps: whatever reaches ZooKeeper can announce endpoints, each one a NodeAdmin imported here. */
    static final int MAX_NODES = 256;

    private static final Logger LOG = System.getLogger(Nodes.class.getName());

    private final Map<String, Node> nodes = new ConcurrentSkipListMap<>();

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void addNode(NodeAdmin admin, Map<String, Object> props) {
        if (props.get(NodeAdmin.NODE) instanceof String name) {
            if (nodes.size() >= MAX_NODES && !nodes.containsKey(name)) {
                LOG.log(Logger.Level.WARNING, "cluster: node " + name + " not kept: this node knows " + MAX_NODES + " already");
                return;
            }
            nodes.put(name, new Node(name, admin, props.get("service.imported") != null, props.get("service.id")));
        }
    }

    /** By its registration, not the object: this node registers the same object again (NodeAdminService), and the new one may be bound first. */
    void removeNode(NodeAdmin admin, Map<String, Object> props) {
        Object id = props.get("service.id");
        nodes.values().removeIf(n -> n.serviceId().equals(id));
    }

    Collection<Node> all() {
        return nodes.values();
    }

    /**
     * How long a name this node does not know is waited for: discovery is asynchronous, and a node
     * just started (a command run as its own process) has found none yet; later, a name it does not
     * know is most likely a wrong one.
     */
    static final Duration GRACE_AFTER_START = Duration.ofSeconds(30);
    static final Duration GRACE = Duration.ofSeconds(2);
    static final Duration STARTING = Duration.ofSeconds(60);

    private final long started = System.nanoTime();

    /** @throws IllegalArgumentException if this node knows no node of that name, after the grace above */
    Node get(String name) {
        boolean starting = System.nanoTime() - started < STARTING.toNanos();
        try {
            return await(name, starting ? GRACE_AFTER_START : GRACE);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for node " + name, e);
        }
    }

    /** The node {@code name}, once discovery has found it, for at most {@code patience}. */
    Node await(String name, Duration patience) throws InterruptedException {
        long deadline = System.nanoTime() + patience.toNanos();
        Node n;
        while ((n = nodes.get(name)) == null) {
            if (System.nanoTime() >= deadline) {
                throw new IllegalArgumentException("no node '" + name + "' (node:list shows the nodes this node knows; waited "
                        + patience.toSeconds() + " s for discovery)");
            }
            Thread.sleep(50);
        }
        return n;
    }

    /** Another node, never this one. */
    Node remote(String name) {
        Node n = get(name);
        if (!n.remote()) {
            throw new IllegalArgumentException("node " + name + " is this node");
        }
        return n;
    }
}
