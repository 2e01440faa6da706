package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.nxia.cluster.api.NodeAdmin;

class NodesTest {

    private static NodeAdmin admin() {
        return (NodeAdmin) Proxy.newProxyInstance(NodesTest.class.getClassLoader(), new Class<?>[] {NodeAdmin.class}, (p, m, a) -> null);
    }

    private static Map<String, Object> props(String name, long id, boolean imported) {
        return imported ? Map.of(NodeAdmin.NODE, name, "service.id", id, "service.imported", "true")
                : Map.of(NodeAdmin.NODE, name, "service.id", id);
    }

    @Test
    void aNodeIsKeptByNameAndRemovedByItsRegistration() throws Exception {
        Nodes nodes = new Nodes();
        NodeAdmin self = admin();
        nodes.addNode(self, props("a", 1, false));
        // the same object registered again (NodeAdminService after a new ZooKeeper session), the new one bound first
        nodes.addNode(self, props("a", 2, false));
        nodes.removeNode(self, props("a", 1, false));
        assertSame(self, nodes.get("a").admin(), "the newer registration stays");
        assertFalse(nodes.get("a").remote());
        assertThrows(IllegalArgumentException.class, () -> nodes.remote("a"), "this node is not another");

        NodeAdmin b = admin();
        nodes.addNode(b, props("b", 3, true));
        assertTrue(nodes.remote("b").remote());
        nodes.removeNode(b, props("b", 3, true));
        IllegalArgumentException gone = assertThrows(IllegalArgumentException.class, () -> nodes.await("b", Duration.ofMillis(100)));
        assertTrue(gone.getMessage().contains("no node 'b'"), gone.getMessage());
    }

    private static Map<String, Object> endpoint(String name, long id, long registered) {
        return Map.of(NodeAdmin.NODE, name, "service.id", id, "service.imported", "true", Nodes.REGISTERED, registered);
    }

    /**
     * A name with several endpoints (one left in ZooKeeper by a node killed or re-registered, until
     * its session expires): this node's own wins, else the one registered last, whatever order they came in.
     */
    @Test
    void ofTwoEndpointsOfOneNameTheNewerIsUsedAndThisNodesOwnAlways() {
        Nodes nodes = new Nodes();
        NodeAdmin newer = admin();
        NodeAdmin stale = admin();
        nodes.addNode(newer, endpoint("b", 5, 2_000));
        nodes.addNode(stale, endpoint("b", 6, 1_000));
        assertSame(newer, nodes.get("b").admin(), "the newer registration, though imported first");
        assertEquals(1, nodes.all().size(), "one line per name");
        assertSame(newer, nodes.all().iterator().next().admin());
        nodes.removeNode(newer, endpoint("b", 5, 2_000));
        assertSame(stale, nodes.get("b").admin(), "the other endpoint is still there");

        NodeAdmin self = admin();
        nodes.addNode(self, props("a", 7, false));
        nodes.addNode(admin(), endpoint("a", 8, Long.MAX_VALUE));
        assertSame(self, nodes.get("a").admin(), "a name of this node's is this node, whatever else announces it");
        assertEquals(2, nodes.all().size());
    }

    /** Anything that reaches ZooKeeper can announce endpoints: the nodes one node keeps are bounded. */
    @Test
    void nodesPastTheBoundAreNotKept() {
        Nodes nodes = new Nodes();
        for (int i = 0; i < Nodes.MAX_NODES + 10; i++) {
            nodes.addNode(admin(), props("n" + i, i, true));
        }
        assertEquals(Nodes.MAX_NODES, nodes.all().size());
    }
}
