package org.nxia.vmm.api.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DeviceConfigTest {

    @Test
    void parsesTypeAlone() {
        DeviceConfig c = DeviceConfig.parse("uart");
        assertEquals("uart", c.type());
        assertTrue(c.parameters().isEmpty());
        assertEquals("uart", c.toString());
    }

    @Test
    void parsesParametersInOrder() {
        DeviceConfig c = DeviceConfig.parse("blk:path=disk.img,ro=false");
        assertEquals("blk", c.type());
        assertEquals(Map.of("path", "disk.img", "ro", "false"), c.parameters());
        assertFalse(c.flag("ro", true));
        assertEquals("disk.img", c.get("path", null));
        assertEquals("x", c.get("missing", "x"));
    }

    @Test
    void readsNumbersInDecimalAndHexWithinBounds() {
        DeviceConfig c = DeviceConfig.parse("uart:port=0x2f8,n=12");
        assertEquals(0x2f8, c.number("port", 0, 0, 0xffff));
        assertEquals(12, c.number("n", 0, 0, 100));
        assertEquals(5, c.number("absent", 5, 0, 10));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> c.number("port", 0, 0, 0xff)).getMessage().contains("outside"));
        DeviceConfig bad = DeviceConfig.parse("uart:port=com1");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> bad.number("port", 0, 0, 0xffff)).getMessage().contains("not a number"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "Uart", "9p", "u_art", "uart:port", "uart:=1", "uart:port=1,port=2", "a:B C=1"})
    void refusesMalformedSpecs(String spec) {
        assertThrows(IllegalArgumentException.class, () -> DeviceConfig.parse(spec));
    }

    @Test
    void refusesAFlagThatIsNotBoolean() {
        DeviceConfig c = DeviceConfig.parse("blk:ro=maybe");
        assertThrows(IllegalArgumentException.class, () -> c.flag("ro", false));
    }
}
