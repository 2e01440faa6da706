package org.nxia.cluster.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.TransformerException;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.aries.rsa.spi.EndpointDescriptionParser;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.remoteserviceadmin.EndpointDescription;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXException;

/**
 * Endpoint descriptions in the OSGi Endpoint Description Extender Format (RSA 1.1, §122.8), read
 * and written with the JDK's DOM: what Aries RSA's ZooKeeper discovery stores in ZooKeeper for
 * each exported service. Aries ships this parser in discovery.local on JAXB, which Java 11 and
 * later no longer carry. What it reads came from ZooKeeper, written by any process that can
 * reach it: a document with a DTD or external entities is refused, and sizes are bounded.
 */
@Component
public final class EdefParser implements EndpointDescriptionParser {

    static final String NS = "http://www.osgi.org/xmlns/rsa/v1.0.0";

    /** Descriptions one document may carry, and properties one description may have. */
    static final int MAX_ENDPOINTS = 256;
    static final int MAX_PROPERTIES = 256;
    static final int MAX_VALUES = 1024;

    private static final Map<String, Function<String, Object>> SCALARS = Map.ofEntries(
            Map.entry("String", s -> s), Map.entry("Long", Long::valueOf), Map.entry("long", Long::valueOf),
            Map.entry("Integer", Integer::valueOf), Map.entry("int", Integer::valueOf), Map.entry("Short", Short::valueOf),
            Map.entry("short", Short::valueOf), Map.entry("Byte", Byte::valueOf), Map.entry("byte", Byte::valueOf),
            Map.entry("Double", Double::valueOf), Map.entry("double", Double::valueOf), Map.entry("Float", Float::valueOf),
            Map.entry("float", Float::valueOf), Map.entry("Boolean", Boolean::valueOf), Map.entry("boolean", Boolean::valueOf),
            Map.entry("Character", EdefParser::character), Map.entry("char", EdefParser::character));

    @Override
    public List<EndpointDescription> readEndpoints(InputStream in) {
        Element root = parse(in).getDocumentElement();
        List<EndpointDescription> out = new ArrayList<>();
        for (Element e : children(root, "endpoint-description")) {
            if (out.size() == MAX_ENDPOINTS) {
                throw new IllegalArgumentException("endpoint descriptions: more than " + MAX_ENDPOINTS);
            }
            out.add(endpoint(e));
        }
        return out;
    }

    @Override
    public EndpointDescription readEndpoint(InputStream in) {
        List<EndpointDescription> all = readEndpoints(in);
        return all.isEmpty() ? null : all.getFirst();
    }

    @Override
    public void writeEndpoint(EndpointDescription endpoint, OutputStream out) {
        try {
            Document doc = builder().newDocument();
            Element root = doc.createElementNS(NS, "endpoint-descriptions");
            doc.appendChild(root);
            Element ed = doc.createElementNS(NS, "endpoint-description");
            root.appendChild(ed);
            for (Map.Entry<String, Object> p : endpoint.getProperties().entrySet()) {
                ed.appendChild(property(doc, p.getKey(), p.getValue()));
            }
            var transformer = TransformerFactory.newInstance().newTransformer();
            transformer.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
            transformer.transform(new DOMSource(doc), new StreamResult(out));
        } catch (TransformerException e) {
            throw new IllegalStateException("cannot write endpoint description: " + e.getMessage(), e);
        }
    }

    private static EndpointDescription endpoint(Element e) {
        Map<String, Object> props = new LinkedHashMap<>();
        for (Element p : children(e, "property")) {
            if (props.size() == MAX_PROPERTIES) {
                throw new IllegalArgumentException("endpoint description: more than " + MAX_PROPERTIES + " properties");
            }
            String name = p.getAttribute("name");
            if (name.isEmpty()) {
                throw new IllegalArgumentException("endpoint description: a property without a name");
            }
            props.put(name, value(p));
        }
        return new EndpointDescription(props);
    }

    private static Object value(Element p) {
        String type = p.hasAttribute("value-type") ? p.getAttribute("value-type") : "String";
        Function<String, Object> scalar = SCALARS.get(type);
        if (scalar == null) {
            throw new IllegalArgumentException("property " + p.getAttribute("name") + ": unknown value-type " + type);
        }
        if (p.hasAttribute("value")) {
            return scalar.apply(p.getAttribute("value"));
        }
        for (Element c : children(p, null)) {
            List<Object> values = new ArrayList<>();
            for (Element v : children(c, "value")) {
                if (values.size() == MAX_VALUES) {
                    throw new IllegalArgumentException("property " + p.getAttribute("name") + ": more than " + MAX_VALUES + " values");
                }
                values.add(scalar.apply(v.getTextContent().trim()));
            }
            return switch (c.getLocalName()) {
                case "array" -> array(type, values);
                case "list" -> values;
                case "set" -> new HashSet<>(values);
                default -> throw new IllegalArgumentException("property " + p.getAttribute("name") + ": " + c.getLocalName()
                        + " is not array, list or set");
            };
        }
        return scalar.apply(p.getTextContent().trim());
    }

    /** A primitive type gives a primitive array; an object type its boxed array. */
    private static Object array(String type, List<Object> values) {
        Class<?> component = switch (type) {
            case "long" -> long.class;
            case "int" -> int.class;
            case "short" -> short.class;
            case "byte" -> byte.class;
            case "double" -> double.class;
            case "float" -> float.class;
            case "boolean" -> boolean.class;
            case "char" -> char.class;
            default -> values.isEmpty() ? String.class : values.getFirst().getClass();
        };
        Object array = Array.newInstance(component, values.size());
        for (int i = 0; i < values.size(); i++) {
            Array.set(array, i, values.get(i));
        }
        return array;
    }

    private static Element property(Document doc, String name, Object value) {
        Element p = doc.createElementNS(NS, "property");
        p.setAttribute("name", name);
        if (value != null && value.getClass().isArray()) {
            int n = Array.getLength(value);
            p.setAttribute("value-type", typeName(value.getClass().getComponentType()));
            Element a = doc.createElementNS(NS, "array");
            for (int i = 0; i < n; i++) {
                a.appendChild(valueElement(doc, Array.get(value, i)));
            }
            p.appendChild(a);
        } else if (value instanceof Collection<?> c) {
            p.setAttribute("value-type", c.isEmpty() ? "String" : typeName(c.iterator().next().getClass()));
            Element l = doc.createElementNS(NS, value instanceof java.util.Set ? "set" : "list");
            c.forEach(v -> l.appendChild(valueElement(doc, v)));
            p.appendChild(l);
        } else {
            p.setAttribute("value-type", value == null ? "String" : typeName(value.getClass()));
            p.setAttribute("value", String.valueOf(value));
        }
        return p;
    }

    private static Element valueElement(Document doc, Object v) {
        Element e = doc.createElementNS(NS, "value");
        e.setTextContent(String.valueOf(v));
        return e;
    }

    /** EDEF's name for a type: a primitive's own, a boxed type's simple name, anything else as String. */
    static String typeName(Class<?> c) {
        if (c.isPrimitive()) {
            return c.getName();
        }
        String simple = c.getSimpleName();
        return SCALARS.containsKey(simple) && c.getPackageName().equals("java.lang") ? simple : "String";
    }

    private static Object character(String s) {
        if (s.length() != 1) {
            throw new IllegalArgumentException("'" + s + "' is not one character");
        }
        return s.charAt(0);
    }

    private static List<Element> children(Element parent, String localName) {
        List<Element> out = new ArrayList<>();
        NodeList nodes = parent.getChildNodes();
        for (int i = 0; i < nodes.getLength(); i++) {
            if (nodes.item(i) instanceof Element e && e.getNodeType() == Node.ELEMENT_NODE
                    && (localName == null || localName.equals(e.getLocalName()))) {
                out.add(e);
            }
        }
        return out;
    }

    private static Document parse(InputStream in) {
        try {
            return builder().parse(in);
        } catch (SAXException | IOException e) {
            throw new IllegalArgumentException("not an endpoint description document: " + e.getMessage(), e);
        }
    }

    private static DocumentBuilder builder() {
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setNamespaceAware(true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setXIncludeAware(false);
            f.setExpandEntityReferences(false);
            DocumentBuilder b = f.newDocumentBuilder();
            // the exception says what was wrong; the default handler would also print it to stderr
            b.setErrorHandler(new org.xml.sax.helpers.DefaultHandler() {
                @Override
                public void fatalError(org.xml.sax.SAXParseException e) throws SAXException {
                    throw e;
                }

                @Override
                public void error(org.xml.sax.SAXParseException e) throws SAXException {
                    throw e;
                }
            });
            return b;
        } catch (ParserConfigurationException e) {
            throw new IllegalStateException(e);
        }
    }
}
