package org.nxia.cluster.internal;

import java.lang.System.Logger;
import java.time.Duration;
import java.util.Collection;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import org.nxia.cluster.api.NodeAdmin;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * The nodes this node knows: its own {@link NodeAdmin} and those Remote Service Admin has imported.
 * One name may have several endpoints for a while: a node killed, or one that re-registered after
 * a new ZooKeeper session, leaves its old endpoint in ZooKeeper until that session expires. A name
 * means this node if it is this node's, else the endpoint registered last.
 */
@Component(service = Nodes.class)
public final class Nodes {

    /** One node's admin service, whether it came from another process, and when its node registered it. */
    record Node(String name, NodeAdmin admin, boolean remote, Object serviceId, long registered) {
    }

    /** Endpoints one node keeps: whatever reaches ZooKeeper can announce endpoints, each one a NodeAdmin imported here. */
    static final int MAX_NODES = 256;

    /**
     * The service property with the time (ms since the epoch) a node registered its NodeAdmin: it
     * travels with the endpoint, so that of two endpoints of one name the newer is used.
     */
    static final String REGISTERED = "org.nxia.cluster.registered";

    private static final Logger LOG = System.getLogger(Nodes.class.getName());

    /** This node's first, then the newest registration, then the one imported last. */
    private static final Comparator<Node> PREFERRED = Comparator.comparing((Node n) -> !n.remote())
            .thenComparingLong(Node::registered)
            .thenComparingLong(n -> n.serviceId() instanceof Long id ? id : 0L);

    private final Map<Object, Node> endpoints = new ConcurrentHashMap<>();

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void addNode(NodeAdmin admin, Map<String, Object> props) {
        if (props.get(NodeAdmin.NODE) instanceof String name) {
            if (endpoints.size() >= MAX_NODES) {
                LOG.log(Logger.Level.WARNING, "cluster: node " + name + " not kept: this node knows " + MAX_NODES + " endpoints already");
                return;
            }
            long registered = props.get(REGISTERED) instanceof Long t ? t : 0L;
            Object id = props.get("service.id");
            endpoints.put(id, new Node(name, admin, props.get("service.imported") != null, id, registered));
        }
    }

    /** By its registration, not the object: this node registers the same object again (NodeAdminService), and the new one may be bound first. */
    void removeNode(NodeAdmin admin, Map<String, Object> props) {
        endpoints.remove(props.get("service.id"));
    }

    /** One node per name, the one {@link #get} would use, by name. */
    Collection<Node> all() {
        Map<String, Node> byName = new TreeMap<>();
        for (Node n : endpoints.values()) {
            byName.merge(n.name(), n, (a, b) -> PREFERRED.compare(a, b) >= 0 ? a : b);
        }
        return byName.values();
    }

    private Node named(String name) {
        return endpoints.values().stream().filter(n -> n.name().equals(name)).max(PREFERRED).orElse(null);
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
        while ((n = named(name)) == null) {
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
