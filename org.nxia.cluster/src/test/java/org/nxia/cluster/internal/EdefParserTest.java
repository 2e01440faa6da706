package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.osgi.service.remoteserviceadmin.EndpointDescription;

class EdefParserTest {

    private final EdefParser parser = new EdefParser();

    /** What Aries puts in an endpoint of NodeAdmin, and the types EDEF has besides. */
    @Test
    void anEndpointWrittenIsReadBackWithItsTypes() {
        Map<String, Object> props = new LinkedHashMap<>();
        props.put("objectClass", new String[] {"org.nxia.cluster.api.NodeAdmin"});
        props.put("endpoint.id", "tcp://127.0.0.1:28101/b");
        props.put("endpoint.service.id", 42L);
        props.put("endpoint.framework.uuid", "c0ffee");
        props.put("service.imported.configs", new String[] {"aries.fastbin"});
        props.put("service.intents", List.of("osgi.basic", "osgi.async"));
        props.put("nxia.node", "b");
        props.put("aries.rsa.port", 28101);
        props.put("weights", new long[] {1, 2, 3});
        props.put("flags", Set.of(true));
        props.put("sep", 'x');
        props.put("ratio", 0.5d);

        EndpointDescription back = roundTrip(new EndpointDescription(props));

        Map<String, Object> got = back.getProperties();
        assertArrayEquals(new String[] {"org.nxia.cluster.api.NodeAdmin"}, (String[]) got.get("objectClass"));
        assertEquals("tcp://127.0.0.1:28101/b", back.getId());
        assertEquals(42L, back.getServiceId());
        assertEquals("c0ffee", back.getFrameworkUUID());
        assertEquals(List.of("aries.fastbin"), back.getConfigurationTypes());
        assertEquals(List.of("osgi.basic", "osgi.async"), back.getIntents());
        assertEquals("b", got.get("nxia.node"));
        assertEquals(28101, got.get("aries.rsa.port"));
        assertArrayEquals(new long[] {1, 2, 3}, (long[]) got.get("weights"));
        assertEquals(Set.of(true), got.get("flags"));
        assertEquals('x', got.get("sep"));
        assertEquals(0.5d, got.get("ratio"));
    }

    @Test
    void anEmptyDocumentHoldsNoEndpoint() {
        assertNull(parser.readEndpoint(in("<endpoint-descriptions xmlns='" + EdefParser.NS + "'/>")));
    }

    /** A document from ZooKeeper may come from anyone who can reach it. */
    @Test
    void hostileDocumentsAreRefusedSayingWhy() {
        String entity = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                + "<endpoint-descriptions xmlns='" + EdefParser.NS + "'><endpoint-description><property name='p' value='&x;'/>"
                + "</endpoint-description></endpoint-descriptions>";
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parser.readEndpoints(in(entity))).getMessage()
                .contains("not an endpoint description document"));

        // no DTD at all, not even internal entities (an entity that expands a billion times needs no file)
        String internal = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x 'boom'>]>"
                + "<endpoint-descriptions xmlns='" + EdefParser.NS + "'><endpoint-description><property name='p' value='&x;'/>"
                + "</endpoint-description></endpoint-descriptions>";
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parser.readEndpoints(in(internal))).getMessage()
                .contains("DOCTYPE"));

        StringBuilder many = new StringBuilder("<endpoint-descriptions xmlns='" + EdefParser.NS + "'><endpoint-description>");
        for (int i = 0; i <= EdefParser.MAX_PROPERTIES; i++) {
            many.append("<property name='p").append(i).append("' value='v'/>");
        }
        many.append("</endpoint-description></endpoint-descriptions>");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parser.readEndpoints(in(many.toString()))).getMessage()
                .contains("more than " + EdefParser.MAX_PROPERTIES));

        String badType = "<endpoint-descriptions xmlns='" + EdefParser.NS + "'><endpoint-description>"
                + "<property name='p' value-type='Thread' value='v'/></endpoint-description></endpoint-descriptions>";
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parser.readEndpoints(in(badType))).getMessage()
                .contains("unknown value-type Thread"));

        assertThrows(IllegalArgumentException.class, () -> parser.readEndpoints(in("not xml")));
    }

    @Test
    void aTypeEdefLacksIsWrittenAsItsString() {
        assertEquals("String", EdefParser.typeName(StringBuilder.class));
        assertEquals("Long", EdefParser.typeName(Long.class));
        assertEquals("long", EdefParser.typeName(long.class));
    }

    private EndpointDescription roundTrip(EndpointDescription e) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        parser.writeEndpoint(e, out);
        return parser.readEndpoint(new ByteArrayInputStream(out.toByteArray()));
    }

    private static ByteArrayInputStream in(String s) {
        return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
    }
}
