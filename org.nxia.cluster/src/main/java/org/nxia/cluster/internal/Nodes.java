package org.nxia.cluster.internal;

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
    record Node(String name, NodeAdmin admin, boolean remote) {
    }

    private final Map<String, Node> nodes = new ConcurrentSkipListMap<>();

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void addNode(NodeAdmin admin, Map<String, Object> props) {
        if (props.get(NodeAdmin.NODE) instanceof String name) {
            nodes.put(name, new Node(name, admin, props.get("service.imported") != null));
        }
    }

    void removeNode(NodeAdmin admin, Map<String, Object> props) {
        nodes.values().removeIf(n -> n.admin() == admin);
    }

    Collection<Node> all() {
        return nodes.values();
    }

    /** How long a name this node does not know yet is waited for: discovery is asynchronous, and a node just started has found none. */
    static final Duration DISCOVERY_GRACE = Duration.ofSeconds(10);

    /** @throws IllegalArgumentException if this node knows no node of that name, after {@link #DISCOVERY_GRACE} */
    Node get(String name) {
        try {
            return await(name, DISCOVERY_GRACE);
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
