package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.ConnectException;

import org.junit.jupiter.api.Test;

class ClusterCommandsTest {

    @Test
    void aVmIsNamedNodeSlashVm() {
        assertEquals("b", ClusterCommands.nodeOf("b/vm-3"));
        assertEquals("vm-3", ClusterCommands.vmOf("b/vm-3"));
        for (String bad : new String[] {"vm-3", "/vm-3", "b/"}) {
            assertThrows(IllegalArgumentException.class, () -> ClusterCommands.vmOf(bad), bad);
        }
    }

    @Test
    void anUnreachableNodeIsReportedByItsRootCause() {
        RuntimeException wrapped = new RuntimeException("remote call failed", new ConnectException("Connection refused"));
        assertEquals("ConnectException: Connection refused", ClusterCommands.reason(wrapped));
    }

    @Test
    void aNodeNameIsLettersDigitsDashAndUnderscore() {
        assertEquals("node-1_a", NodeAdminService.checkedName("node-1_a"));
        for (String bad : new String[] {"", "-a", "a b", "a/b", "x".repeat(64)}) {
            assertThrows(IllegalArgumentException.class, () -> NodeAdminService.checkedName(bad), bad);
        }
    }
}
