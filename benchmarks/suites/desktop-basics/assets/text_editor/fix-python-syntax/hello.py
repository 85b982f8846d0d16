name = "world"
print("Hello, " + name
